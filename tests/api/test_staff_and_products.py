"""Staff insights (consent-gated) and similar products (diet-aware)."""

from __future__ import annotations

from tests.api.conftest import Store, seed_catalog


def test_staff_sees_insights_of_a_consenting_shopper(weekly_shopper: Store) -> None:
    insights = weekly_shopper.get_insights("C-WEEKLY").json()
    assert insights["visits"] == 6
    assert insights["favourite_categories"][:2] == ["bread", "milk"]
    assert insights["segment"]  # a named segment from the bundle's model
    assert insights["model_version"] == "test-1"


def test_insights_need_staff_assist_consent(weekly_shopper: Store) -> None:
    response = weekly_shopper.get_insights("C-VEGAN")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "consent_required"


def test_kiosk_cannot_read_insights(weekly_shopper: Store) -> None:
    assert weekly_shopper.get_insights("C-WEEKLY", role="kiosk").status_code == 403


def test_similar_products_respect_the_shoppers_diet(store: Store) -> None:
    seed_catalog(store.db_path)
    import sqlite_utils

    db = sqlite_utils.Database(store.db_path)
    db["products"].insert_all([
        {"product_id": "MILK2", "name": "Organic milk 1 l", "category": "milk", "price": 1.3,
         "allergens": '["milk"]', "diets": '["vegetarian"]'},
        {"product_id": "MILK3", "name": "Milk 4 pints", "category": "milk", "price": 2.9,
         "allergens": '["milk"]', "diets": '["vegetarian"]'}])
    db.close()
    similar = store.get("/v1/products/MILK/similar").json()
    assert [p["product_id"] for p in similar["similar"]] == ["MILK2", "MILK3"]
    vegan = store.get("/v1/products/MILK/similar", customer_id=store.shopper("C-VEGAN")).json()
    assert vegan["similar"] == [] and vegan["filtered_for_diet"] is True
    assert store.get("/v1/products/NOPE/similar").status_code == 404


def test_a_display_key_learns_nothing_about_a_shoppers_diet(weekly_shopper: Store) -> None:
    """A public screen asking on a shopper's behalf is refused, whoever the shopper: the
    answer is the same for a vegan with a milk allergy, a shopper without one, and nobody."""
    store = weekly_shopper
    answers = {who: store.get("/v1/products/MILK/similar", role="display", customer_id=who)
               for who in ("C-VEGAN", "C-WEEKLY", "C-NOBODY")}
    assert {r.status_code for r in answers.values()} == {403}
    assert len({r.json()["error"]["message"] for r in answers.values()}) == 1
    assert "customer_id" in answers["C-VEGAN"].json()["error"]["message"]
    plain = store.get("/v1/products/MILK/similar", role="display").json()
    assert plain["filtered_for_diet"] is False
