"""The staff and display pages in a real browser, against a live agent."""

from __future__ import annotations

from datetime import UTC, datetime

from edge_agent.queries.trending import MIN_TRENDING_BUYERS
from tests.api.conftest import days_ago, seed_catalog
from tests.ingestion.conftest import count, pos_event, shelf_event, wait_until
from tests.ui.conftest import LiveStore

# A display refreshes every 5 s at the fastest (display.js), and store-wide answers are
# served stale while they are recomputed (edge_agent/api/cache.py): a sale shows within two
# refreshes.
DISPLAY_CATCHES_UP_MS = 15_000


def test_staff_page_shows_an_alert_after_a_shelf_runs_empty(live_store: LiveStore,
                                                            page: object) -> None:
    page.goto(live_store.page_url("staff", "staff"))  # type: ignore[attr-defined]
    page.get_by_text("All shelves are stocked.").wait_for()  # type: ignore[attr-defined]
    live_store.publisher.publish("stores/store-t1/shelf/S-milk-1",
                                 shelf_event(product_id="P000042", quantity=0, capacity=24))
    alert = page.locator("li[data-shelf='S-milk-1']")  # type: ignore[attr-defined]
    alert.wait_for(timeout=15_000)
    assert "Empty" in alert.inner_text()


def test_display_page_refreshes_itself(live_store: LiveStore, page: object) -> None:
    page.goto(live_store.page_url("display", "display", refresh="1"))  # type: ignore[attr-defined]
    page.get_by_text("Fresh offers are on their way.").wait_for()  # type: ignore[attr-defined]
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    _catalog_product(live_store, "P000099")
    for _ in range(MIN_TRENDING_BUYERS):  # enough different (anonymous) buyers to trend
        live_store.publisher.event(pos_event(ts=now, customer_id=None, items=[
            {"product_id": "P000099", "quantity": 1, "unit_price": 3.0}], total=3.0))
    wait_until(lambda: count(live_store.db_path, "SELECT count(*) FROM events")
               == MIN_TRENDING_BUYERS)
    page.locator("li[data-product='P000099']").wait_for(timeout=DISPLAY_CATCHES_UP_MS)  # type: ignore[attr-defined]
    assert int(page.evaluate("document.body.dataset.refreshes")) >= 2  # type: ignore[attr-defined]


def test_pages_say_plainly_when_the_device_key_is_wrong(live_store: LiveStore,
                                                        page: object) -> None:
    page.goto(f"{live_store.url}/ui/staff.html?key=not-a-real-key")  # type: ignore[attr-defined]
    error = page.get_by_role("alert")  # type: ignore[attr-defined]
    error.wait_for()
    assert "not signed in" in error.inner_text()


def test_staff_can_help_a_consenting_shopper_and_find_an_item(live_store: LiveStore,
                                                              page: object) -> None:
    seed_catalog(live_store.db_path)
    for age in (21, 14, 7):
        live_store.publisher.event(pos_event(
            customer_id="C-WEEKLY", ts=days_ago(age), total=2.0,
            items=[{"product_id": "MILK", "quantity": 1, "unit_price": 2.0}]))
    wait_until(lambda: count(live_store.db_path, "SELECT count(*) FROM shopper_features") == 1)
    page.goto(live_store.page_url("staff", "staff"))  # type: ignore[attr-defined]
    page.get_by_label("Shopper's loyalty number").fill("1000000001")  # type: ignore[attr-defined]
    page.get_by_role("button", name="Look up").click()  # type: ignore[attr-defined]
    details = page.locator("#assist")  # type: ignore[attr-defined]
    details.wait_for()
    assert "milk" in details.inner_text()
    page.get_by_label("Shopper's loyalty number").fill("1000000003")  # type: ignore[attr-defined]
    page.get_by_role("button", name="Look up").click()  # type: ignore[attr-defined]
    refused = page.locator("#assist-error")  # type: ignore[attr-defined]
    refused.wait_for()
    assert "hasn't agreed to staff assistance" in refused.inner_text()
    page.get_by_label("Product name or code").fill("milk")  # type: ignore[attr-defined]
    page.get_by_role("button", name="Find").click()  # type: ignore[attr-defined]
    page.locator("#find-results button[data-product='MILK']").click()  # type: ignore[attr-defined]
    page.locator("#map svg polyline.path").wait_for()  # type: ignore[attr-defined]
    assert "Back cross-aisle" in page.locator("#find-result").inner_text()  # type: ignore[attr-defined]


def test_zone_display_shows_what_sells_in_that_zone(live_store: LiveStore,
                                                     page: object) -> None:
    from edge_agent.wayfinding import StoreMap

    seed_catalog(live_store.db_path)
    store_map = StoreMap("supermarket")
    zone = next(z for z in store_map.layout.zones if "milk" in (store_map.zone_categories(z) or ()))
    page.goto(live_store.page_url("display", "display", refresh="1", zone=zone))  # type: ignore[attr-defined]
    for _ in range(MIN_TRENDING_BUYERS):
        live_store.publisher.event(pos_event(
            ts=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), customer_id=None,
            items=[{"product_id": "MILK", "quantity": 1, "unit_price": 1.1}], total=1.1))
    page.locator("li[data-product='MILK']").wait_for(timeout=DISPLAY_CATCHES_UP_MS)  # type: ignore[attr-defined]
    assert page.locator("header h1").inner_text().startswith("Popular in")  # type: ignore[attr-defined]


def _catalog_product(store: LiveStore, product_id: str) -> None:
    import sqlite_utils

    db = sqlite_utils.Database(store.db_path)
    db["products"].upsert({"product_id": product_id, "name": "Pea soup", "category": "soup",
                           "price": 3.0}, pk="product_id", alter=True)
    db.close()
