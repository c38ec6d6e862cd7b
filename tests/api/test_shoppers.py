"""Shopping lists and purchase timing from sales that came in over MQTT; consent, diet,
stock and unknown shoppers."""

from __future__ import annotations

import pytest

from tests.api.conftest import Store, buy, seed_catalog
from tests.ingestion.conftest import count, shelf_event, wait_until


def test_loyalty_number_finds_the_shopper(weekly_shopper: Store) -> None:
    found = weekly_shopper.get("/v1/shoppers/lookup", loyalty_number="1000000001")
    assert found.json() == {"customer_id": weekly_shopper.shopper("C-WEEKLY")}
    assert weekly_shopper.get("/v1/shoppers/lookup",
                              loyalty_number="9999999999").status_code == 404
    bad = weekly_shopper.get("/v1/shoppers/lookup", loyalty_number="12 34")
    assert bad.status_code == 422 and "query.loyalty_number" in bad.json()["error"]["fields"]


def test_weekly_milk_is_due_and_monthly_laundry_is_not(weekly_shopper: Store) -> None:
    response = weekly_shopper.get_shopper("C-WEEKLY", "shopping-list")
    assert response.status_code == 200
    body = response.json()
    items = {item["product_id"]: item for item in body["items"]}
    assert {"MILK", "BREAD"} <= set(items)
    assert "SOAP" not in items
    assert items["MILK"]["reason"] == "You buy milk about every 7 days; last bought 7 days ago."
    assert items["MILK"]["in_stock"] is True
    assert body["model_version"] == "test-1"


def test_a_purchase_today_updates_the_list_at_once(weekly_shopper: Store) -> None:
    """The model's answers are reused per shopper, but never across one of their sales."""
    def milk_on_list() -> bool:
        items = weekly_shopper.get_shopper("C-WEEKLY", "shopping-list").json()["items"]
        return "MILK" in {item["product_id"] for item in items}

    assert milk_on_list() and milk_on_list()  # the second answer comes from the memo
    buy(weekly_shopper, "C-WEEKLY", 0, "MILK")
    wait_until(lambda: count(weekly_shopper.db_path, "SELECT sales FROM shopper_features"
                                                     " WHERE customer_id = 'C-WEEKLY'") == 7,
               what="the sale applied to the features")
    assert not milk_on_list()


def test_purchase_timing_per_category(weekly_shopper: Store) -> None:
    timing = weekly_shopper.get_shopper("C-WEEKLY", "purchase-timing").json()
    by_category = {c["category"]: c for c in timing["categories"]}
    assert set(by_category) == {"milk", "bread", "laundry"}
    milk, laundry = by_category["milk"], by_category["laundry"]
    assert milk["purchases"] == 4 and milk["typical_gap_days"] == pytest.approx(7.0)
    assert milk["low_days"] <= milk["days_until"] <= milk["high_days"]
    assert laundry["days_until"] > milk["days_until"]


def test_an_empty_shelf_is_flagged_on_the_list(weekly_shopper: Store) -> None:
    weekly_shopper.publisher.publish("stores/store-t1/shelf/S-MILK",
                                     shelf_event(product_id="MILK", quantity=0, capacity=24))
    wait_until(lambda: count(weekly_shopper.db_path, "SELECT count(*) FROM shelf_state") == 1)
    items = weekly_shopper.get_shopper("C-WEEKLY", "shopping-list").json()["items"]
    assert {i["product_id"]: i["in_stock"] for i in items}["MILK"] is False


def test_diet_and_allergies_exclude_products_even_from_habits(weekly_shopper: Store) -> None:
    items = weekly_shopper.get_shopper("C-VEGAN", "shopping-list").json()["items"]
    ids = {item["product_id"] for item in items}
    assert "MILK" not in ids and "OAT" in ids


def test_no_consent_means_no_personal_answers(weekly_shopper: Store) -> None:
    seed_catalog(weekly_shopper.db_path)
    response = weekly_shopper.get_shopper("C-PRIVATE", "shopping-list")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "consent_required"


def test_unknown_shopper_is_404(weekly_shopper: Store) -> None:
    response = weekly_shopper.get("/v1/shoppers/C-NOBODY/purchase-timing")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "unknown_customer"


def test_a_display_key_cannot_read_a_shopping_list(weekly_shopper: Store) -> None:
    assert weekly_shopper.get_shopper("C-WEEKLY", "shopping-list",
                              role="display").status_code == 403
