"""Finding things in the store: a product by the words a person types, the aisle of a
shelf that runs low, the stops of a shopping list in the order they are walked past."""

from __future__ import annotations

import pytest

from tests.api.conftest import Store, seed_catalog
from tests.ingestion.conftest import count, shelf_event, wait_until

MORE_PRODUCTS = [
    {"product_id": "MILK2", "name": "Semi-skimmed milk 2 l", "category": "milk", "price": 1.6,
     "allergens": '["milk"]', "diets": '["vegetarian"]'},
    {"product_id": "CHOC", "name": "Milk chocolate bar 100 g", "category":
     "chocolate and sweets", "price": 1.2, "allergens": '["milk"]', "diets": "[]"},
    {"product_id": "EGGS6", "name": "Free range eggs pack of 6", "category": "eggs",
     "price": 2.1, "allergens": '["egg"]', "diets": '["vegetarian"]'},
]


@pytest.fixture
def catalog(store: Store) -> Store:
    import sqlite_utils

    seed_catalog(store.db_path)
    db = sqlite_utils.Database(store.db_path)
    db["products"].upsert_all(MORE_PRODUCTS, pk="product_id")
    db.close()
    return store


def _search(store: Store, q: str, role: str = "staff", **params: object) -> list[dict]:
    response = store.get("/v1/products/search", role=role, q=q, **params)
    assert response.status_code == 200, response.text
    return response.json()["items"]


def test_milk_finds_milk_by_name_and_category(catalog: Store) -> None:
    found = [p["product_id"] for p in _search(catalog, "milk")]
    # The category first (shortest name first), then other products with the word.
    assert found[:2] == ["MILK", "MILK2"]
    assert set(found) == {"MILK", "MILK2", "OAT", "CHOC"}


@pytest.mark.parametrize(("q", "expected"), [
    ("semi skimmed", ["MILK2"]),
    ("SOURDOUGH", ["BREAD"]),
    ("choc", ["CHOC"]),  # the start of a word
    ("egg", ["EGGS6"]),
    ("eggs", ["EGGS6"]),
    ("laundry", ["SOAP"]),
    ("milk2", ["MILK2"]),  # a product code, any case
    ("caviar", []),
])
def test_search_by_words_or_code(catalog: Store, q: str, expected: list[str]) -> None:
    assert [p["product_id"] for p in _search(catalog, q)] == expected


def test_search_says_where_a_product_is_and_whether_it_is_in_stock(catalog: Store) -> None:
    catalog.publisher.publish("stores/store-t1/shelf/S-BREAD",
                              shelf_event(product_id="BREAD", quantity=0, capacity=24))
    wait_until(lambda: count(catalog.db_path, "SELECT count(*) FROM shelf_state") == 1)
    (bread,) = _search(catalog, "sourdough", role="kiosk")
    assert bread["location"] == "Bakery walkway" and bread["in_stock"] is False
    assert _search(catalog, "milk", limit=1)[0]["location"] == "Back cross-aisle (chilled wall)"


def test_search_is_validated(catalog: Store) -> None:
    response = catalog.get("/v1/products/search", role="staff", q="")
    assert response.status_code == 422 and "query.q" in response.json()["error"]["fields"]


def test_restock_alerts_name_the_aisle(store: Store) -> None:
    seed_catalog(store.db_path)
    readings = {"S-17": ("MILK", 0), "A05-back-left": ("P-UNKNOWN", 1)}
    for shelf, (product, quantity) in readings.items():
        store.publisher.publish(f"stores/store-t1/shelf/{shelf}",
                                shelf_event(product_id=product, quantity=quantity, capacity=24))
    wait_until(lambda: count(store.db_path, "SELECT count(*) FROM shelf_state") == 2)
    alerts = store.get("/v1/staff/restock-alerts", role="staff").json()["alerts"]
    where = {alert["shelf_id"]: alert["location"] for alert in alerts}
    # A sensor's own shelf id: where its product's category is stocked. A shelf of the
    # layout: its own aisle.
    assert where == {"S-17": "Back cross-aisle (chilled wall)", "A05-back-left": "Aisle 5"}


def test_shopping_list_stops_are_numbered_in_walking_order(weekly_shopper: Store) -> None:
    listed = weekly_shopper.get_shopper("C-WEEKLY", "shopping-list").json()["items"]
    route = weekly_shopper.get_shopper("C-WEEKLY", "shopping-list/route").json()
    stops = route["stops"]
    assert [stop["number"] for stop in stops] == list(range(1, len(stops) + 1))
    # One number per place: each stop is somewhere else, and every item is at one stop.
    assert len({stop["node"] for stop in stops}) == len(stops)
    routed = [item["item_id"] for stop in stops for item in stop["items"]]
    assert sorted(routed) == sorted(item["product_id"] for item in listed)
    # Numbers follow the walk: the polyline reaches stop n before stop n + 1.
    points = [tuple(p) for p in route["polyline"]]
    reached = [points.index((stop["x"], stop["y"])) for stop in stops]
    assert reached == sorted(reached)
    assert all(stop["location"] for stop in stops)
