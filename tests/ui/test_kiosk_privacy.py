"""A kiosk is shared: nothing of one shopper may be seen by the next. After Done, after the
idle timeout, and under the message for the next person's card (unknown, or without
consent), the page holds nothing personal: not hidden, gone."""

from __future__ import annotations

from tests.ui.conftest import LiveStore

WEEKLY_CARD, PRIVATE_CARD, UNKNOWN_CARD = "1000000001", "1000000002", "5555555555"
# What C-WEEKLY's list, suggestions and route show (tests/api/conftest.py PRODUCTS).
WEEKLY_NAMES = ("Whole milk 1 l", "Sourdough loaf")
# kiosk.js forgets a shopper after 90 s without a touch.
IDLE_MS = 90_000
# How long an answer that should be dropped is given to show up anyway.
LATE_ANSWER_GRACE_MS = 1_500


def _show(page: object, card: str) -> None:
    page.get_by_label("Loyalty number").fill(card)  # type: ignore[attr-defined]
    page.get_by_role("button", name="Show my list").click()  # type: ignore[attr-defined]


def _show_weekly(page: object) -> None:
    _show(page, WEEKLY_CARD)
    page.locator("#list li[data-product='MILK']").wait_for(timeout=15_000)  # type: ignore[attr-defined]


def _assert_nothing_personal(page: object) -> None:
    personal = page.locator("#list li, #recs li, #map svg")  # type: ignore[attr-defined]
    assert personal.count() == 0, "the previous shopper's list, suggestions or map remain"
    assert page.locator("#route-summary").text_content() == ""  # type: ignore[attr-defined]
    assert not page.locator("#shopper").is_visible()  # type: ignore[attr-defined]
    seen = page.locator("body").inner_text()  # type: ignore[attr-defined]
    assert not any(name in seen for name in WEEKLY_NAMES), seen


def test_done_forgets_the_shopper(regular: LiveStore, page: object) -> None:
    page.goto(regular.page_url("kiosk", "kiosk"))  # type: ignore[attr-defined]
    _show_weekly(page)
    page.get_by_role("button", name="Done").click()  # type: ignore[attr-defined]
    assert page.get_by_label("Loyalty number").is_visible()  # type: ignore[attr-defined]
    _assert_nothing_personal(page)


def test_idle_forgets_the_shopper(regular: LiveStore, page: object) -> None:
    page.clock.install()  # type: ignore[attr-defined]
    page.goto(regular.page_url("kiosk", "kiosk"))  # type: ignore[attr-defined]
    _show_weekly(page)
    page.clock.fast_forward(IDLE_MS + 1_000)  # type: ignore[attr-defined]
    page.get_by_label("Loyalty number").wait_for()  # type: ignore[attr-defined]
    _assert_nothing_personal(page)


def test_the_next_cards_message_shows_nothing_of_the_previous_shopper(
        regular: LiveStore, page: object) -> None:
    page.goto(regular.page_url("kiosk", "kiosk"))  # type: ignore[attr-defined]
    for card, message in ((UNKNOWN_CARD, "couldn't find that loyalty number"),
                          (PRIVATE_CARD, "switched off for this card")):
        _show_weekly(page)
        page.get_by_role("button", name="Done").click()  # type: ignore[attr-defined]
        _show(page, card)
        alert = page.get_by_role("alert")  # type: ignore[attr-defined]
        alert.wait_for()
        assert message in alert.inner_text()
        _assert_nothing_personal(page)


def test_a_late_answer_for_the_previous_shopper_is_never_shown(regular: LiveStore,
                                                               page: object) -> None:
    """The route for one card is slow; meanwhile the next person types theirs. When the
    first answer arrives, it must not be drawn under the second person's message."""
    held: list[object] = []

    def hold(route: object) -> None:
        held.append(route)

    page.route("**/shopping-list/route", hold)  # type: ignore[attr-defined]
    page.goto(regular.page_url("kiosk", "kiosk"))  # type: ignore[attr-defined]
    _show(page, WEEKLY_CARD)
    while not held:
        page.wait_for_timeout(50)  # type: ignore[attr-defined]
    _show(page, UNKNOWN_CARD)
    page.get_by_role("alert").wait_for()  # type: ignore[attr-defined]
    held[0].continue_()  # type: ignore[attr-defined]
    page.wait_for_timeout(LATE_ANSWER_GRACE_MS)  # type: ignore[attr-defined]
    assert "couldn't find that loyalty number" in page.get_by_role("alert").inner_text()  # type: ignore[attr-defined]
    _assert_nothing_personal(page)


def test_idle_also_clears_a_half_typed_number_and_a_message(regular: LiveStore,
                                                           page: object) -> None:
    page.clock.install()  # type: ignore[attr-defined]
    page.goto(regular.page_url("kiosk", "kiosk"))  # type: ignore[attr-defined]
    _show(page, UNKNOWN_CARD)
    page.get_by_role("alert").wait_for()  # type: ignore[attr-defined]
    page.get_by_label("Loyalty number").fill("10000")  # type: ignore[attr-defined]
    page.clock.fast_forward(IDLE_MS + 1_000)  # type: ignore[attr-defined]
    page.get_by_role("alert").wait_for(state="hidden")  # type: ignore[attr-defined]
    assert page.get_by_label("Loyalty number").input_value() == ""  # type: ignore[attr-defined]
