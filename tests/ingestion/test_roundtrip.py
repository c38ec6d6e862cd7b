"""Every event type goes from a publish on the real broker to its rows in SQLite."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from edge_agent.agent import Agent
from tests.ingestion.conftest import (
    Publisher,
    consenting_shopper,
    count,
    interaction_event,
    pos_event,
    presence_event,
    rows,
    shelf_event,
    wait_until,
    zone_event,
)


def _stored(db_path: Path, event_id: str) -> bool:
    return count(db_path, "SELECT count(*) FROM events WHERE event_id = ?", event_id) == 1


def test_pos_transaction_lands_in_transactions_and_items(agent: Agent, publisher: Publisher,
                                                         db_path: Path) -> None:
    event = pos_event()
    publisher.event(event)
    wait_until(lambda: _stored(db_path, event["event_id"]), what="pos event")
    (sale,) = rows(db_path, "SELECT * FROM transactions WHERE transaction_id = ?",
                   event["transaction_id"])
    assert (sale["customer_id"], sale["register_id"], sale["total"], sale["item_count"]) == (
        "C00001", "till-1", 5.5, 2)
    assert sale["ts"] == "2026-11-21T09:30:00.000000Z"
    items = rows(db_path, "SELECT product_id, quantity, unit_price, discount "
                          "FROM transaction_items WHERE sale_id = ? ORDER BY line_no",
                 sale["sale_id"])
    assert [tuple(r) for r in items] == [("P000001", 2.0, 1.25, 0.0), ("P000777", 1.0, 3.5, 0.5)]


def test_anonymous_sale_of_unknown_product_is_stored(agent: Agent, publisher: Publisher,
                                                     db_path: Path) -> None:
    # The catalog can lag the tills: an unknown product or shopper is not an error.
    event = pos_event(customer_id=None, items=[{"product_id": "NOT-IN-CATALOG", "quantity": 1,
                                                "unit_price": 9.99}], total=9.99)
    publisher.event(event)
    wait_until(lambda: _stored(db_path, event["event_id"]), what="anonymous sale")
    (sale,) = rows(db_path, "SELECT customer_id FROM transactions WHERE transaction_id = ?",
                   event["transaction_id"])
    assert sale["customer_id"] is None


def test_shelf_reading_updates_shelf_state_only_when_newer(agent: Agent, publisher: Publisher,
                                                           db_path: Path) -> None:
    publisher.event(shelf_event(quantity=10, ts="2026-11-21T09:00:00Z"))
    newest = shelf_event(quantity=0, ts="2026-11-21T09:05:00Z")
    publisher.event(newest)
    stale = shelf_event(quantity=20, ts="2026-11-21T08:00:00Z")  # delayed redelivery
    publisher.event(stale)
    wait_until(lambda: _stored(db_path, stale["event_id"]), what="shelf readings")
    (state,) = rows(db_path, "SELECT * FROM shelf_state WHERE shelf_id = 'shelf-A1'")
    assert (state["quantity"], state["capacity"], state["event_id"]) == (0, 24, newest["event_id"])


@pytest.mark.parametrize(("make", "table", "expected"), [
    (zone_event, "zone_traffic", {"zone_id": "dairy", "people": 7, "avg_dwell_s": 42.5}),
    (presence_event, "presence", {"device_id": "cart-9", "customer_id": "C00001",
                                  "zone_id": "dairy"}),
    (interaction_event, "interactions", {"device_id": "kiosk-2", "action": "click",
                                         "product_id": "P000001", "context": "kiosk",
                                         "model_version": "ranker-1"}),
])
def test_sensor_and_interaction_events_land_in_their_table(
        agent: Agent, publisher: Publisher, db_path: Path, make: Any, table: str,
        expected: dict[str, Any]) -> None:
    consenting_shopper(db_path, "C00001")  # presence is kept only with consent
    event = make()
    publisher.event(event)
    wait_until(lambda: _stored(db_path, event["event_id"]), what=table)
    (row,) = rows(db_path, f"SELECT * FROM {table} WHERE event_id = ?", event["event_id"])
    assert {key: row[key] for key in expected} == expected


def test_duplicate_event_id_is_stored_once(agent: Agent, publisher: Publisher,
                                           db_path: Path) -> None:
    event = pos_event()
    for _ in range(3):
        publisher.event(event)
    marker = zone_event()
    publisher.event(marker)
    wait_until(lambda: _stored(db_path, marker["event_id"]), what="marker after duplicates")
    assert count(db_path, "SELECT count(*) FROM events WHERE event_id = ?",
                 event["event_id"]) == 1
    assert count(db_path, "SELECT count(*) FROM transactions") == 1
    wait_until(lambda: agent.stats().duplicates == 2, what="duplicate count")


def test_events_keep_the_raw_payload_for_the_cloud_uplink(agent: Agent, publisher: Publisher,
                                                          db_path: Path) -> None:
    event = interaction_event(extra_field_from_newer_firmware="kept")
    publisher.event(event)
    wait_until(lambda: _stored(db_path, event["event_id"]), what="interaction")
    (row,) = rows(db_path, "SELECT type, device_id, ts, body FROM events WHERE event_id = ?",
                  event["event_id"])
    assert (row["type"], row["device_id"], row["ts"]) == (
        "interaction", "kiosk-2", "2026-11-21T09:30:00.000000Z")
    body = orjson.loads(row["body"])
    assert body["extra_field_from_newer_firmware"] == "kept"
    assert body["product_id"] == event["product_id"]
    # The envelope is in the columns, not stored twice.
    assert not {"event_id", "store_id", "ts", "type"} & set(body)
