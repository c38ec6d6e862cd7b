"""Routes through the store for products and for a shopper's list; the map; zone displays."""

from __future__ import annotations

from tests.api.conftest import Store, seed_catalog


def test_route_for_products_visits_each_shelf_and_ends_at_a_checkout(store: Store) -> None:
    seed_catalog(store.db_path)
    response = store.post("/v1/routes", {"product_ids": ["MILK", "BREAD", "SOAP", "GHOST"]})
    assert response.status_code == 200
    route = response.json()
    routed = [item["item_id"] for stop in route["stops"] for item in stop["items"]]
    assert sorted(routed) == ["BREAD", "MILK", "SOAP"]
    assert route["entrance"] and route["checkout"]
    assert route["not_found"] == [{"item_id": "GHOST", "category": None,
                                   "reason": "not in this store's catalog"}]
    assert route["distance_m"] > 0 and len(route["polyline"]) >= 2
    temperatures = [stop["temperature"] for stop in route["stops"]]
    assert temperatures == sorted(temperatures, key=["ambient", "chilled", "frozen"].index)


def test_route_request_is_validated(store: Store) -> None:
    response = store.post("/v1/routes", {"product_ids": []})
    assert response.status_code == 422
    assert "body.product_ids" in response.json()["error"]["fields"]


def test_shopping_list_route_collects_the_list(weekly_shopper: Store) -> None:
    shopping = weekly_shopper.get_shopper("C-WEEKLY", "shopping-list").json()["items"]
    route = weekly_shopper.get_shopper("C-WEEKLY", "shopping-list/route").json()
    routed = {item["item_id"] for stop in route["stops"] for item in stop["items"]}
    assert routed == {item["product_id"] for item in shopping} and routed


def test_map_has_what_a_kiosk_draws(store: Store) -> None:
    drawn = store.get("/v1/store/map", role="display").json()
    assert drawn["layout_id"] == "supermarket"
    assert drawn["shelves"] and drawn["entrances"] and drawn["checkouts"] and drawn["zones"]


def test_display_content_is_not_personal_without_a_present_shopper(store: Store) -> None:
    zone = store.get("/v1/store/map", role="display").json()["zones"][0]["id"]
    content = store.get(f"/v1/displays/{zone}/content", role="display").json()
    assert content["personalized"] is False and content["for_you"] == []
    assert content["categories"]
    assert store.get("/v1/displays/no-such-zone/content", role="display").status_code == 404
