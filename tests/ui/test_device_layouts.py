"""The pages on the screens they run on: a landscape kiosk (1920 x 1080), a portrait kiosk
totem (1080 x 1920), a staff phone (390 x 844), a display. Each fits its screen (no
sideways scrolling, the parts that matter above the fold), and the screenshots in
docs/screenshots are taken here."""

from __future__ import annotations

import time
from collections.abc import Callable

from tests.ui.conftest import SCREENSHOTS, LiveStore
from tests.ui.seeding import FAMILY, NEIGHBOURS, SeededStore, run_shelves_low, sell_now

Device = Callable[[int, int], object]
LANDSCAPE, PORTRAIT, PHONE, DESK = (1920, 1080), (1080, 1920), (390, 844), (1280, 900)
# On a portrait totem the map spans the screen (a column of a landscape layout is ~55%).
PORTRAIT_MAP_SHARE = 0.9
# Boxes closer than this (CSS px) are taken to touch: anti-aliasing, rounding.
TOUCH_PX = 0.5
# display.js: a display refreshes at most every 5 s, every 30 s unless told otherwise.
DISPLAY_MIN_REFRESH_S, DISPLAY_DEFAULT_REFRESH_S = 5.0, 30.0
# How long a display's requests are counted: a little over one minimum interval.
DISPLAY_WATCH_S = 7.0


def _screenshot(page: object, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / name))  # type: ignore[attr-defined]


def _no_sideways_scroll(page: object) -> bool:
    return bool(page.evaluate(  # type: ignore[attr-defined]
        "document.documentElement.scrollWidth <= window.innerWidth"))


def _box(page: object, selector: str) -> dict[str, float]:
    box = page.locator(selector).bounding_box()  # type: ignore[attr-defined]
    assert box is not None, f"{selector} is not shown"
    return box


def _show_list(store: LiveStore, page: object, card: str, items: int) -> None:
    page.goto(store.page_url("kiosk", "kiosk"))  # type: ignore[attr-defined]
    page.get_by_label("Loyalty number").fill(card)  # type: ignore[attr-defined]
    page.get_by_role("button", name="Show my list").click()  # type: ignore[attr-defined]
    page.locator("#map g.stop").first.wait_for(timeout=15_000)  # type: ignore[attr-defined]
    assert page.locator("#list li[data-product]").count() == items  # type: ignore[attr-defined]


def _label_boxes(page: object) -> list[list[float]]:
    return page.evaluate("""[...document.querySelectorAll('#map g.stop')].map((g) => {
        const r = (g.querySelector('circle.label') || g.querySelector('circle'))
          .getBoundingClientRect();
        return [r.left, r.top, r.right, r.bottom];
      })""")  # type: ignore[attr-defined]


def _overlapping(boxes: list[list[float]]) -> list[tuple[int, int]]:
    return [(i + 1, j + 1) for i, a in enumerate(boxes) for j, b in enumerate(boxes[i + 1:], i + 1)
            if a[0] < b[2] - TOUCH_PX and b[0] < a[2] - TOUCH_PX
            and a[1] < b[3] - TOUCH_PX and b[1] < a[3] - TOUCH_PX]


def _walking_order_numbers(page: object) -> tuple[list[str], list[str]]:
    """The numbers down the list, and the numbers of the map's stops in route order."""
    listed = page.evaluate("""[...document.querySelectorAll('#list .stop-number')]
        .map((e) => e.textContent.trim())""")  # type: ignore[attr-defined]
    drawn = page.evaluate("""[...document.querySelectorAll('#map g.stop')]
        .map((g) => g.textContent.trim())""")  # type: ignore[attr-defined]
    return listed, drawn


def test_portrait_kiosk_fits_a_long_list_and_the_map_on_one_screen(
        seeded: tuple[LiveStore, SeededStore], device: Device) -> None:
    store, shop = seeded
    page = device(*PORTRAIT)
    _show_list(store, page, FAMILY["loyalty_number"], items=len(shop.family))
    assert _no_sideways_scroll(page)
    width, height = PORTRAIT
    assert _box(page, "#map")["width"] >= PORTRAIT_MAP_SHARE * width
    for panel in (".map-panel", ".list-panel"):
        box = _box(page, panel)
        assert box["y"] + box["height"] <= height, f"{panel} runs below the screen"
    listed, drawn = _walking_order_numbers(page)
    assert listed == [str(n) for n in range(1, len(drawn) + 1)]  # one number per stop
    assert listed == drawn
    assert _overlapping(_label_boxes(page)) == []
    _screenshot(page, "kiosk-portrait.png")


def test_landscape_kiosk_shows_list_and_map_side_by_side(
        seeded: tuple[LiveStore, SeededStore], device: Device) -> None:
    store, shop = seeded
    page = device(*LANDSCAPE)
    _show_list(store, page, FAMILY["loyalty_number"], items=len(shop.family))
    assert _no_sideways_scroll(page)
    listed, drawn = _walking_order_numbers(page)
    assert listed == drawn == [str(n) for n in range(1, len(drawn) + 1)]
    map_box, list_box = _box(page, ".map-panel"), _box(page, ".list-panel")
    assert map_box["y"] + map_box["height"] <= LANDSCAPE[1]
    assert list_box["x"] + list_box["width"] <= map_box["x"]
    assert _overlapping(_label_boxes(page)) == []
    _screenshot(page, "kiosk.png")


def test_stops_a_metre_apart_get_labels_that_do_not_overlap(
        seeded: tuple[LiveStore, SeededStore], device: Device) -> None:
    """Flowers by the door, sandwiches in the chiller beside them: two stops 1 m apart."""
    store, shop = seeded
    page = device(*LANDSCAPE)
    _show_list(store, page, NEIGHBOURS["loyalty_number"], items=len(shop.neighbours))
    boxes = _label_boxes(page)
    assert len(boxes) == 2
    assert _overlapping(boxes) == []


def test_staff_phone_reaches_every_section_in_one_tap(
        seeded: tuple[LiveStore, SeededStore], device: Device) -> None:
    store, shop = seeded
    run_shelves_low(store.db_path, store.publisher, shop.catalog)
    page = device(*PHONE)
    page.set_default_timeout(10_000)  # type: ignore[attr-defined]
    page.goto(store.page_url("staff", "staff"))  # type: ignore[attr-defined]
    alerts = page.locator("#restock li")  # type: ignore[attr-defined]
    alerts.nth(49).wait_for()
    assert _no_sideways_scroll(page)
    places = alerts.locator(".where").all_inner_texts()
    # Every alert says where the shelf is in the store's words, not a sensor's shelf id.
    assert places and not any("SH-" in place for place in places), places
    assert all(place.split(" · ")[0] for place in places)
    _screenshot(page, "staff-phone.png")
    phone_height = PHONE[1]
    for tab, field in (("Help a shopper", "Shopper's loyalty number"),
                       ("Find an item", "Product name or code")):
        page.get_by_role("tab", name=tab).click()  # type: ignore[attr-defined]
        box = page.get_by_label(field).bounding_box()  # type: ignore[attr-defined]
        assert box is not None and box["y"] + box["height"] <= phone_height, f"{tab} below the fold"
    page.get_by_label("Product name or code").fill("milk")  # type: ignore[attr-defined]
    page.get_by_role("button", name="Find").click()  # type: ignore[attr-defined]
    page.locator("#find-results button").first.click()  # type: ignore[attr-defined]
    page.locator("#map svg polyline.path").wait_for()  # type: ignore[attr-defined]
    assert "milk" in page.locator("#find-result").inner_text().lower()  # type: ignore[attr-defined]
    assert _no_sideways_scroll(page)
    # A wide screen (a tablet on a stand, the back office) shows the three side by side.
    wide = device(*DESK)
    wide.goto(store.page_url("staff", "staff"))  # type: ignore[attr-defined]
    wide.locator("#restock li").nth(49).wait_for()  # type: ignore[attr-defined]
    assert wide.get_by_label("Shopper's loyalty number").is_visible()  # type: ignore[attr-defined]
    assert wide.get_by_label("Product name or code").is_visible()  # type: ignore[attr-defined]
    _screenshot(wide, "staff.png")


def test_display_refresh_is_clamped_to_a_sane_interval(live_store: LiveStore,
                                                       device: Device) -> None:
    """`refresh=0` (or a typo) once meant a request every few milliseconds."""
    for requested, interval_s in (("0", DISPLAY_MIN_REFRESH_S),
                                  ("soon", DISPLAY_DEFAULT_REFRESH_S)):
        page = device(*LANDSCAPE)
        sent: list[float] = []
        page.on("request", lambda request, sent=sent: sent.append(time.monotonic())  # type: ignore[attr-defined]
                if "/v1/" in request.url else None)
        page.goto(live_store.page_url("display", "display", refresh=requested))  # type: ignore[attr-defined]
        page.wait_for_timeout(DISPLAY_WATCH_S * 1000)  # type: ignore[attr-defined]
        watched = time.monotonic() - sent[0]
        assert len(sent) <= 1 + int(watched // interval_s), (requested, len(sent))
        page.close()  # type: ignore[attr-defined]


def test_display_shows_what_sells_now_across_the_store(
        seeded: tuple[LiveStore, SeededStore], device: Device) -> None:
    store, shop = seeded
    sell_now(store.db_path, store.publisher, list(shop.family.values())[:6])
    page = device(*LANDSCAPE)
    page.goto(store.page_url("display", "display"))  # type: ignore[attr-defined]
    page.locator("#trending li").nth(5).wait_for(timeout=15_000)  # type: ignore[attr-defined]
    assert _no_sideways_scroll(page)
    places = page.locator("#trending li span.muted").all_inner_texts()  # type: ignore[attr-defined]
    assert all(places), places
    _screenshot(page, "display.png")
