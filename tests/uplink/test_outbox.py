"""The event log as the uplink's outbox, without a broker: what a batch carries (and what it
must not), that batches fit IoT Core's payload limit and are cut the same way every time,
that consent is read when a batch is cut, and that retention waits for the cloud."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import orjson
import pytest
import sqlite_utils

from cloud_sync.link.batch import MAX_PAYLOAD_BYTES, decode_batch
from cloud_sync.link.privacy import pseudonymize
from edge_agent.settings import Settings, load_settings
from edge_agent.storage import open_database
from edge_agent.storage.retention import UNSENT_EVENTS
from edge_agent.uplink.outbox import Outbox
from tests.test_retention import NOW, RETENTION, STORE, count, event, purge_all, write

KEY = b"k" * 32


@pytest.fixture
def db(tmp_path: Path) -> sqlite_utils.Database:
    database = open_database(tmp_path / "edge.db")
    database["customers"].insert_all([
        {"customer_id": "C00007", "loyalty_number": "4000007", "consent_personalization": 1},
        {"customer_id": "C00008", "loyalty_number": "4000008", "consent_personalization": 0},
    ])
    return database


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(store_id=STORE, db=str(tmp_path / "edge.db"), **RETENTION)


def drain(outbox: Outbox) -> list[dict]:
    """Every event the outbox would send, batch after batch, acknowledging each."""
    events: list[dict] = []
    while (batch := outbox.next_batch(outbox.cursor())) is not None:
        events.extend(decode_batch(batch.payload).events)
        outbox.acknowledge(batch.last_seq)
    return events


def test_only_consenting_shoppers_leave_as_pseudonyms_and_nothing_else_personal(
        db: sqlite_utils.Database, settings: Settings) -> None:
    messages = [event("pos", NOW, customer_id="C00007"), event("pos", NOW, customer_id="C00008"),
                event("presence", NOW, customer_id="C00007"),
                event("presence", NOW, customer_id="C00008"),
                event("interaction", NOW, customer_id="C00009", context="my name is Jo"),
                event("shelf", NOW, firmware_note="free text from a device")]
    write(db, settings, NOW, messages)
    sent = drain(Outbox(db.conn, STORE, KEY))
    assert [e["event_id"] for e in sent] == [orjson.loads(m.payload)["event_id"]
                                             for m in messages]
    shoppers = [e.get("customer_id") for e in sent]
    assert shoppers == [pseudonymize(KEY, "C00007"), None, pseudonymize(KEY, "C00007"), None,
                        None, None]
    text = json.dumps(sent)
    for personal in ("C00007", "C00008", "C00009", "4000007", "my name is Jo", "free text"):
        assert personal not in text
    assert sent[4]["context"] is None  # not a known context: never free text


def test_consent_withdrawn_before_sending_sends_the_backlog_anonymous(
        db: sqlite_utils.Database, settings: Settings) -> None:
    write(db, settings, NOW, [event("pos", NOW, customer_id="C00007") for _ in range(3)])
    db.execute("UPDATE customers SET consent_personalization = 0 WHERE customer_id = 'C00007'")
    assert {e["customer_id"] for e in drain(Outbox(db.conn, STORE, KEY))} == {None}


def test_batches_fit_the_payload_limit_and_are_cut_the_same_way_again(
        db: sqlite_utils.Database, settings: Settings) -> None:
    # Big baskets that compress badly: distinct product ids and prices on every line.
    messages = [event("pos", NOW, items=[{"product_id": f"P{n}-{i}", "quantity": 1.0 + i,
                                          "unit_price": 0.01 * (n * 131 + i), "discount": 0.0}
                                         for i in range(120)]) for n in range(400)]
    write(db, settings, NOW, messages)
    outbox = Outbox(db.conn, STORE, KEY)
    first_pass = []
    after = 0
    while (batch := outbox.next_batch(after)) is not None:
        assert len(batch.payload) <= MAX_PAYLOAD_BYTES
        first_pass.append((batch.batch_id, batch.first_seq, batch.last_seq, batch.payload))
        after = batch.last_seq
    assert len(first_pass) > 1
    # A crash before any acknowledgement: the same batches, byte for byte, from the cursor.
    again = Outbox(db.conn, STORE, KEY)
    assert again.next_batch(again.cursor()).payload == first_pass[0][3]
    assert len({b[0] for b in first_pass}) == len(first_pass)
    assert sum(len(decode_batch(b[3]).events) for b in first_pass) == 400


def test_the_cursors_only_move_forward_and_the_backlog_counts_what_the_lake_lacks(
        db: sqlite_utils.Database, settings: Settings) -> None:
    write(db, settings, NOW, [event("zone", NOW) for _ in range(10)])
    outbox = Outbox(db.conn, STORE, KEY)
    assert outbox.backlog().events == 10
    outbox.acknowledge(7)
    outbox.acknowledge(3)
    assert outbox.cursor() == 7
    assert outbox.backlog().events == 10  # the broker took them; the lake has not said so
    outbox.confirm_lake(7)
    outbox.confirm_lake(2)
    assert outbox.lake_watermark() == 7 and outbox.backlog().events == 3
    outbox.acknowledge(10)
    assert outbox.rewind_to_lake() == 7  # unconfirmed: sent again
    outbox.confirm_lake(10)
    assert outbox.backlog().events == 0 and outbox.backlog().oldest_received_at is None


def test_retention_keeps_unsent_events_when_linked_unless_the_operator_lets_them_go(
        db: sqlite_utils.Database, tmp_path: Path) -> None:
    linked = load_settings(store_id=STORE, db=str(tmp_path / "edge.db"),
                           cloud_credentials=str(tmp_path), **RETENTION)
    old = NOW - timedelta(days=RETENTION["retention_events_days"] + 1)
    write(db, linked, old, [event("zone", old) for _ in range(10)])
    outbox = Outbox(db.conn, STORE, KEY)
    outbox.acknowledge(8)
    outbox.confirm_lake(4)
    purge_all(db, linked, NOW)
    assert count(db, "events") == 6  # only what the lake confirmed
    island = load_settings(store_id=STORE, db=str(tmp_path / "edge.db"), **RETENTION)
    giving_way = load_settings(store_id=STORE, db=str(tmp_path / "edge.db"),
                               cloud_credentials=str(tmp_path), uplink_max_unsent_days=2,
                               **RETENTION)
    results = purge_all(db, giving_way, NOW)
    assert count(db, "events") == 0
    assert sum(r.deleted[UNSENT_EVENTS] for r in results) == 6
    write(db, island, old, [event("zone", old) for _ in range(5)])
    purge_all(db, island, NOW)
    assert count(db, "events") == 0  # no link: retention alone decides
