"""Recommendations: popular and non-personal without consent or ranker; rules always apply."""

from __future__ import annotations

import pytest

from tests.api.conftest import Store, buy
from tests.ingestion.conftest import count, shelf_event, wait_until


@pytest.fixture
def busy_week(weekly_shopper: Store) -> Store:
    """This week, milk and bread sold in three baskets each, laundry in one."""
    before = count(weekly_shopper.db_path, "SELECT count(*) FROM events")
    for days in (1, 2, 3):
        buy(weekly_shopper, "C-PRIVATE", days, "MILK", "BREAD")
    wait_until(lambda: count(weekly_shopper.db_path, "SELECT count(*) FROM events")
               == before + 3)
    return weekly_shopper


def test_without_consent_they_are_the_stores_favourites(busy_week: Store) -> None:
    body = busy_week.get_shopper("C-PRIVATE", "recommendations").json()
    assert body["personalized"] is False
    ids = [item["product_id"] for item in body["items"]]
    assert set(ids[:2]) == {"MILK", "BREAD"} and {"SOAP", "OAT"} <= set(ids[2:])
    assert all(item["reason"] == "Popular in this store this week" for item in body["items"])
    assert all(item["model_version"] is None for item in body["items"])


def test_a_new_consenting_shopper_gets_favourites_that_suit_their_diet(
        busy_week: Store) -> None:
    body = busy_week.get_shopper("C-NEW", "recommendations").json()
    assert body["personalized"] is False
    ids = {item["product_id"] for item in body["items"]}
    assert "MILK" not in ids and "BREAD" in ids


def test_context_sets_how_many_items(busy_week: Store) -> None:
    weekly_shopper = busy_week
    body = weekly_shopper.get_shopper("C-WEEKLY", "recommendations", context="display",
                              limit=2).json()
    assert body["context"] == "display" and len(body["items"]) == 2
    bad = weekly_shopper.get_shopper("C-WEEKLY", "recommendations", context="tv")
    assert bad.status_code == 422 and "query.context" in bad.json()["error"]["fields"]


def test_unknown_shopper_is_404(weekly_shopper: Store) -> None:
    assert weekly_shopper.get("/v1/shoppers/NOBODY/recommendations").status_code == 404


# The test bundle's ranker was trained on generated data: items "0".."149", 10 a category.
RANKER_ITEMS = 150
ITEMS_PER_CATEGORY = 10


@pytest.fixture
def ranked_shopper(store: Store) -> Store:
    """A catalog in the ranker's vocabulary and a consenting shopper with weekly habits."""
    import sqlite_utils

    db = sqlite_utils.Database(store.db_path)
    db["products"].upsert_all(
        [{"product_id": str(i), "name": f"Item {i}", "price": 1.0 + i % 7,
          "category": f"cat{i // ITEMS_PER_CATEGORY:03d}", "allergens": "[]", "diets": "[]"}
         for i in range(RANKER_ITEMS)], pk="product_id")
    db["customers"].upsert({"customer_id": "C-RANK", "loyalty_number": "2000000001",
                            "consent_personalization": 1, "consent_staff_assist": 1},
                           pk="customer_id")
    db.close()
    before = count(store.db_path, "SELECT count(*) FROM events")
    for week in range(6, 0, -1):
        buy(store, "C-RANK", 7 * week, "0", "1", "2", "16", "31")
    wait_until(lambda: count(store.db_path, "SELECT count(*) FROM events") == before + 6)
    return store


def _recommend(store: Store) -> dict:
    return store.get_shopper("C-RANK", "recommendations", limit=10).json()


def test_personal_recommendations_come_from_the_ranker(ranked_shopper: Store) -> None:
    body = _recommend(ranked_shopper)
    assert body["personalized"] is True and body["items"]
    assert all(item["model_version"] == "test-1" and item["reason"] for item in body["items"])
    usual = [item for item in body["items"] if "usual" in item["tags"]]
    assert usual and all("about every 7 days" in item["reason"] for item in usual)
    per_category: dict[str, int] = {}
    for item in body["items"]:
        per_category[item["category"]] = per_category.get(item["category"], 0) + 1
    assert max(per_category.values()) <= 2


def test_an_empty_shelf_or_an_allergen_removes_a_product(ranked_shopper: Store) -> None:
    first = _recommend(ranked_shopper)["items"]
    emptied, allergic = first[0]["product_id"], first[1]["product_id"]
    ranked_shopper.publisher.publish(
        "stores/store-t1/shelf/S-EMPTY", shelf_event(product_id=emptied, quantity=0))
    wait_until(lambda: count(ranked_shopper.db_path, "SELECT count(*) FROM shelf_state") == 1)
    import sqlite_utils

    db = sqlite_utils.Database(ranked_shopper.db_path)
    db["products"].update(allergic, {"allergens": '["nuts"]'})
    db["customers"].update("C-RANK", {"allergens": '["nuts"]'})
    db.close()
    after = {item["product_id"] for item in _recommend(ranked_shopper)["items"]}
    assert emptied not in after and allergic not in after


def test_nothing_bought_today_is_suggested(ranked_shopper: Store) -> None:
    before = [item["product_id"] for item in _recommend(ranked_shopper)["items"]]
    bought = before[:2]
    assert len(bought) == 2
    events = count(ranked_shopper.db_path, "SELECT count(*) FROM events")
    buy(ranked_shopper, "C-RANK", 0.1, *bought)  # this morning
    wait_until(lambda: count(ranked_shopper.db_path, "SELECT count(*) FROM events")
               == events + 1)
    wait_until(lambda: not set(bought) & {
        item["product_id"] for item in _recommend(ranked_shopper)["items"]},
        what="today's purchases to leave the suggestions")
    after = _recommend(ranked_shopper)["items"]
    assert after and all("last bought today" not in item["reason"] for item in after)
