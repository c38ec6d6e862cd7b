"""Trending, restock alerts and feedback, from events that came in over MQTT."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.api.conftest import Store
from tests.ingestion.conftest import count, pos_event, rows, shelf_event, wait_until


def _ts(delta: timedelta) -> str:
    return (datetime.now(UTC) + delta).strftime("%Y-%m-%dT%H:%M:%SZ")


def _line(product_id: str) -> dict:
    return {"product_id": product_id, "quantity": 1, "unit_price": 2.0}


def _catalog(store: Store, *product_ids: str) -> None:
    import sqlite_utils

    db = sqlite_utils.Database(store.db_path)
    db["products"].upsert_all([{"product_id": p, "name": p.title(), "category": p.lower(),
                                "price": 2.0} for p in product_ids], pk="product_id",
                              alter=True)
    db.close()


def test_trending_ranks_a_product_selling_faster_than_usual(store: Store) -> None:
    _catalog(store, "SOUP", "BREAD")
    events = []
    # Bread sells steadily all week; soup sells only today, in many baskets.
    for day in range(1, 7):
        for _ in range(3):
            events.append(pos_event(ts=_ts(timedelta(days=-day)), items=[_line("BREAD")],
                                    customer_id=None, total=2.0))
    for minutes in range(8):
        events.append(pos_event(ts=_ts(timedelta(minutes=-minutes * 10)), customer_id=None,
                                items=[_line("SOUP"), _line("BREAD")], total=4.0))
    for event in events:
        store.publisher.event(event)
    wait_until(lambda: count(store.db_path, "SELECT count(*) FROM events") == len(events))
    items = store.get("/v1/trending", window_hours=3).json()["items"]
    assert [item["product_id"] for item in items] == ["SOUP", "BREAD"]
    assert items[0]["baskets"] == 8 and items[0]["lift"] > items[1]["lift"]


def test_one_shoppers_baskets_or_unknown_products_do_not_trend(store: Store) -> None:
    """Six sales of one product by one shopper, and a burst of anonymous sales of an id the
    catalog does not have (what a rogue device on the store network sent), show nothing;
    the same product bought by three shoppers does."""
    _catalog(store, "SOUP")
    events = [pos_event(ts=_ts(timedelta(minutes=-m)), customer_id="C-ONE",
                        items=[_line("SOUP")], total=2.0) for m in range(6)]
    events += [pos_event(ts=_ts(timedelta(minutes=-m)), customer_id=None,
                         items=[_line('"><script>alert(1)</script>')], total=2.0)
               for m in range(6)]
    for event in events:
        store.publisher.event(event)
    wait_until(lambda: count(store.db_path, "SELECT count(*) FROM events") == len(events))
    assert store.get("/v1/trending", window_hours=3).json()["items"] == []
    more = [pos_event(ts=_ts(timedelta(minutes=-1)), customer_id=who, items=[_line("SOUP")],
                      total=2.0) for who in ("C-TWO", "C-THREE")]
    for event in more:
        store.publisher.event(event)
    wait_until(lambda: count(store.db_path, "SELECT count(*) FROM events") == len(events) + 2)
    # Another window than the first call's, which the trending cache still holds.
    trending = store.get("/v1/trending", window_hours=2).json()["items"]
    assert [item["product_id"] for item in trending] == ["SOUP"]


def test_restock_alert_appears_when_a_shelf_runs_empty(store: Store) -> None:
    assert store.get("/v1/staff/restock-alerts", role="staff").json()["alerts"] == []
    for shelf, quantity in (("S-milk", 0), ("S-eggs", 3), ("S-rice", 20)):
        store.publisher.publish(f"stores/store-t1/shelf/{shelf}",
                                shelf_event(quantity=quantity, capacity=24))
    wait_until(lambda: count(store.db_path, "SELECT count(*) FROM shelf_state") == 3)
    alerts = store.get("/v1/staff/restock-alerts", role="staff").json()["alerts"]
    assert [(a["shelf_id"], a["severity"]) for a in alerts] == [("S-milk", "empty"),
                                                                ("S-eggs", "low")]


def test_feedback_is_stored_once_even_when_retried(store: Store) -> None:
    body = {"device_id": "kiosk-3", "action": "add_to_list", "product_id": "P000001",
            "customer_id": "C00001", "context": "kiosk", "model_version": "ranker-7",
            "event_id": "fb-123"}
    first = store.post("/v1/feedback", body)
    assert first.status_code == 201 and first.json() == {"event_id": "fb-123"}
    assert store.post("/v1/feedback", body).status_code == 201
    (row,) = rows(store.db_path, "SELECT * FROM interactions")
    assert (row["device_id"], row["action"], row["model_version"]) == (
        "kiosk-3", "add_to_list", "ranker-7")
    assert count(store.db_path, "SELECT count(*) FROM events WHERE type='interaction'") == 1


def test_feedback_with_a_bad_action_names_the_field(store: Store) -> None:
    response = store.post("/v1/feedback", {"device_id": "k", "action": "like",
                                           "product_id": "P1"})
    assert response.status_code == 422
    assert "body.action" in response.json()["error"]["fields"]


def test_feedback_device_id_cannot_escape_its_topic(store: Store) -> None:
    response = store.post("/v1/feedback", {"device_id": "k/../#", "action": "click",
                                           "product_id": "P1"})
    assert response.status_code == 422
    assert "body.device_id" in response.json()["error"]["fields"]
