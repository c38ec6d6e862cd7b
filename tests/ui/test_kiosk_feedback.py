"""The kiosk tells the store what a shopper saw and tapped, in a real browser: an impression
per recommendation shown and a click on a tap, each with the served model version and the
shopper's id; the page never suffers when feedback cannot be sent."""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest
import sqlite_utils

from tests.api.conftest import days_ago
from tests.ingestion.conftest import count, pos_event, wait_until
from tests.ui.conftest import LiveStore

# The test bundle's ranker was trained on generated data: items "0".."149", 10 a category.
RANKER_ITEMS, ITEMS_PER_CATEGORY = 150, 10
SHOPPER = {"customer_id": "C-RANK", "loyalty_number": "2000000001",
           "consent_personalization": 1, "consent_staff_assist": 1}


@pytest.fixture
def ranked(live_store: LiveStore) -> LiveStore:
    """A consenting shopper with six weeks of baskets of products the ranker knows."""
    db = sqlite_utils.Database(live_store.db_path)
    db["products"].upsert_all(
        [{"product_id": str(i), "name": f"Item {i}", "price": 1.0 + i % 7,
          "category": f"cat{i // ITEMS_PER_CATEGORY:03d}", "allergens": "[]", "diets": "[]"}
         for i in range(RANKER_ITEMS)], pk="product_id")
    db["customers"].upsert(SHOPPER, pk="customer_id")
    db.close()
    for week in range(6, 0, -1):
        live_store.publisher.event(pos_event(
            customer_id=SHOPPER["customer_id"], ts=days_ago(7 * week), total=5.0,
            items=[{"product_id": p, "quantity": 1, "unit_price": 1.0}
                   for p in ("0", "1", "2", "16", "31")]))
    wait_until(lambda: count(live_store.db_path, "SELECT count(*) FROM shopper_features") == 1)
    return live_store


def interactions(store: LiveStore, action: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(store.db_path) as conn:
        return conn.execute(
            "SELECT product_id, customer_id, context, model_version FROM interactions"
            " WHERE action = ? ORDER BY ts", (action,)).fetchall()


def show_list(page: Any, store: LiveStore, loyalty: str) -> dict[str, Any]:
    """Look up a shopper; the recommendations the page was served."""
    page.goto(store.page_url("kiosk", "kiosk"))
    page.get_by_label("Loyalty number").fill(loyalty)
    with page.expect_response(lambda r: "/recommendations" in r.url) as served:
        page.get_by_role("button", name="Show my list").click()
    page.locator("#recs li").first.wait_for(timeout=15_000)
    return served.value.json()  # type: ignore[no-any-return]


def test_a_tap_on_a_recommendation_stores_a_click_with_the_served_model_version(
        ranked: LiveStore, page: Any) -> None:
    regular, family = ranked, SHOPPER["customer_id"]
    recs = show_list(page, regular, str(SHOPPER["loyalty_number"]))
    shown = page.locator("#recs li").evaluate_all("rows => rows.map(r => r.dataset.product)")
    versions = {item["product_id"]: item["model_version"] for item in recs["items"]}
    wait_until(lambda: len(interactions(regular, "impression")) == len(shown),
               what="an impression per recommendation shown")
    assert sorted(p for p, *_ in interactions(regular, "impression")) == sorted(shown)
    assert {row[1:] for row in interactions(regular, "impression")} <= {
        (family, "recommendations", v) for v in versions.values()}

    # A tap on one the model chose (the shopper consented and the bundle ranks).
    tapped = next(p for p in shown if versions[p] is not None)
    page.locator(f"#recs li[data-product='{tapped}']").click()
    wait_until(lambda: interactions(regular, "click"), what="the click stored")
    assert interactions(regular, "click") == [
        (tapped, family, "recommendations", versions[tapped])]
    assert versions[tapped] == "test-1"  # the bundle the store serves
    assert not page.get_by_role("alert").is_visible()


def test_feedback_that_cannot_be_sent_leaves_the_page_working(regular: LiveStore,
                                                              page: Any) -> None:
    page.route("**/v1/feedback", lambda route: route.abort())
    show_list(page, regular, "1000000001")
    page.locator("#recs li").first.click()
    page.wait_for_timeout(300)
    assert not page.get_by_role("alert").is_visible()
    assert page.locator("#list li[data-product='MILK']").count() == 1
    assert interactions(regular, "click") == []
    page.get_by_role("button", name="Done").click()  # the page still answers
    assert page.get_by_label("Loyalty number").is_visible()
