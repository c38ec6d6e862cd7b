"""Shopper features follow the sales exactly once, through the real writer path."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import orjson
import pytest
import sqlite_utils

from edge_agent.features import store as store_module
from edge_agent.features.store import (
    STATE_VERSION_KEY,
    ensure_features_current,
    load_features,
    rebuild_features,
)
from edge_agent.storage import open_database
from edge_agent.storage.event_writer import EventWriter, RawMessage
from tests.ingestion.conftest import STORE, TOPIC_BY_TYPE, pos_event

DAY = 86400.0


def _sale(day: int, *products: str, customer: str = "C1") -> RawMessage:
    event = pos_event(customer_id=customer, ts=f"2026-11-{day:02d}T10:00:00Z",
                      items=[{"product_id": p, "quantity": 1, "unit_price": 2.0}
                             for p in products], total=2.0 * len(products))
    return RawMessage(TOPIC_BY_TYPE["pos.transaction"], orjson.dumps(event))


def _db(tmp_path: Path) -> sqlite_utils.Database:
    db = open_database(tmp_path / "edge.db", synchronous="NORMAL")
    db["products"].insert_all([
        {"product_id": "MILK", "name": "Milk", "category": "milk"},
        {"product_id": "BREAD", "name": "Bread", "category": "bread"},
        {"product_id": "SOAP", "name": "Soap", "category": "laundry"}])
    # Features exist only for shoppers who consented to personalization.
    db["customers"].insert_all([{"customer_id": c, "consent_personalization": 1}
                                for c in ("C1", "C2", "C3")])
    return db


def _writer(db: sqlite_utils.Database) -> EventWriter:
    return EventWriter(db, store_id=STORE, max_payload_bytes=65536,
                       dead_letter_max_raw_bytes=65536)


def test_weekly_milk_buyer_state(tmp_path: Path) -> None:
    db = _db(tmp_path)
    writer = _writer(db)
    for day in (1, 8, 15):
        writer.write_batch([_sale(day, "MILK", "BREAD")])
    writer.write_batch([_sale(16, "SOAP")])
    features = load_features(db.conn, "C1")
    assert features is not None
    assert features.baskets.n_baskets == 4 and features.trips.trips == 4
    assert features.baskets.items["MILK"].count == 3
    milk = features.categories["milk"]
    assert milk.count == 3 and milk.n_gaps == 2 and abs(milk.gap_mean - 7.0) < 1e-9
    assert set(features.categories) == {"milk", "bread", "laundry"}


def test_redelivered_sale_does_not_count_twice(tmp_path: Path) -> None:
    db = _db(tmp_path)
    writer = _writer(db)
    sale = _sale(3, "MILK")
    writer.write_batch([sale, sale])
    writer.write_batch([sale])
    features = load_features(db.conn, "C1")
    assert features is not None and features.trips.trips == 1
    assert db.execute("SELECT sales FROM shopper_features").fetchone()[0] == 1


def test_anonymous_sales_and_unknown_products_are_fine(tmp_path: Path) -> None:
    db = _db(tmp_path)
    writer = _writer(db)
    anonymous = pos_event(customer_id=None)
    writer.write_batch([RawMessage(TOPIC_BY_TYPE["pos.transaction"], orjson.dumps(anonymous)),
                        _sale(2, "NOT-IN-CATALOG")])
    assert db["shopper_features"].count == 1
    features = load_features(db.conn, "C1")
    assert features is not None and features.categories == {}
    assert "NOT-IN-CATALOG" in features.baskets.items


def test_rebuild_gives_the_same_state_as_live_updates(tmp_path: Path) -> None:
    db = _db(tmp_path)
    writer = _writer(db)
    for day, customer in ((1, "C1"), (2, "C2"), (5, "C1"), (9, "C2"), (12, "C1")):
        writer.write_batch([_sale(day, "MILK", "BREAD", customer=customer)])
    live = {c: load_features(db.conn, c) for c in ("C1", "C2")}
    assert rebuild_features(db.conn) == 5
    rebuilt = {c: load_features(db.conn, c) for c in ("C1", "C2")}
    assert rebuilt == live


def test_state_from_other_feature_code_is_rebuilt_at_start(tmp_path: Path) -> None:
    db = _db(tmp_path)
    writer = _writer(db)
    for day in (1, 8):
        writer.write_batch([_sale(day, "MILK")])
    assert ensure_features_current(db.conn) is True  # first start: records the version
    assert ensure_features_current(db.conn) is False
    db.execute("UPDATE agent_meta SET value = 'nbr:old' WHERE key = ?", [STATE_VERSION_KEY])
    db.execute("UPDATE shopper_features SET state = ?", [b"written by older code"])
    assert ensure_features_current(db.conn) is True
    features = load_features(db.conn, "C1")
    assert features is not None and features.categories["milk"].count == 2


def test_rebuild_in_batches_of_shoppers_gives_the_same_state(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = _db(tmp_path)
    writer = _writer(db)
    for day, customer in ((1, "C1"), (2, "C2"), (3, "C3"), (5, "C1"), (7, "C2"), (9, "C3")):
        writer.write_batch([_sale(day, "MILK", "BREAD", customer=customer)])
    live = {c: load_features(db.conn, c) for c in ("C1", "C2", "C3")}
    monkeypatch.setattr(store_module, "REBUILD_BATCH_SHOPPERS", 1)
    assert rebuild_features(db.conn) == 6
    assert {c: load_features(db.conn, c) for c in ("C1", "C2", "C3")} == live


def test_renaming_a_field_of_the_stored_state_changes_its_version() -> None:
    # Stored state is pickled: a class or field renamed by a later release must lead to a
    # rebuild at start-up, not to every shopper failing at request time.
    from edge_agent.features.shopper import _layout_fingerprint

    inner = dataclasses.make_dataclass("Inner", [("count", int)])
    renamed = dataclasses.make_dataclass("Inner", [("total", int)])
    outer = dataclasses.make_dataclass("Outer", [("items", dict[str, inner])])
    outer_renamed = dataclasses.make_dataclass("Outer", [("items", dict[str, renamed])])
    assert _layout_fingerprint(outer) != _layout_fingerprint(outer_renamed)
    assert _layout_fingerprint(outer) == _layout_fingerprint(
        dataclasses.make_dataclass("Outer", [("items", dict[str, inner])]))


def test_features_follow_consent_given_and_withdrawn(tmp_path: Path) -> None:
    """No features for a shopper without consent; consent given later builds them from the
    sales kept (the same state as live updates would have), and a withdrawal deletes them."""
    from edge_agent.masterdata.apply import apply_records

    db = _db(tmp_path)
    writer = _writer(db)
    db["customers"].insert({"customer_id": "C4", "consent_personalization": 0})
    for day, customer in ((1, "C1"), (1, "C4"), (8, "C1"), (8, "C4"), (9, "C-UNKNOWN")):
        writer.write_batch([_sale(day, "MILK", "BREAD", customer=customer)])
    assert load_features(db.conn, "C4") is None
    assert load_features(db.conn, "C-UNKNOWN") is None
    apply_records(db.conn, "consent", [(1, {"customer_id": "C4",
                                            "consent_personalization": True})],
                  version=1, batch_id="consent-1")
    given = load_features(db.conn, "C4")
    assert given is not None and given == load_features(db.conn, "C1")  # same purchases
    apply_records(db.conn, "consent", [(1, {"customer_id": "C4",
                                            "consent_personalization": False})],
                  version=2, batch_id="consent-2")
    assert load_features(db.conn, "C4") is None
    assert load_features(db.conn, "C1") is not None
