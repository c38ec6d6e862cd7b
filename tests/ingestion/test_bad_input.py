"""Bad input is dead-lettered with its reason and raw bytes, and ingestion goes on."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from edge_agent.agent import Agent
from tests.ingestion.conftest import (
    STORE,
    Publisher,
    count,
    pos_event,
    rows,
    shelf_event,
    wait_until,
    zone_event,
)

POS_TOPIC = f"stores/{STORE}/pos/till-1"
BAD_INPUTS = [
    pytest.param(POS_TOPIC, b"this is not json", "not valid JSON", id="not-json"),
    pytest.param(POS_TOPIC, b"\xff\xfe\x00garbage", "not valid JSON", id="not-utf8"),
    pytest.param(POS_TOPIC, b"[1, 2, 3]", "not a JSON object", id="json-array"),
    pytest.param(POS_TOPIC, orjson.dumps(pos_event(total="12.50")), "field 'pos.transaction.total'",
                 id="wrong-type"),
    pytest.param(POS_TOPIC, orjson.dumps(pos_event(items=[{"product_id": "P1", "quantity": -2,
                                                           "unit_price": 1.0}])),
                 "field 'pos.transaction.items.0.quantity'", id="negative-quantity"),
    pytest.param(POS_TOPIC, orjson.dumps({**pos_event(), "type": "pos.refund"}),
                 "unknown type 'pos.refund'", id="unknown-type"),
    pytest.param(POS_TOPIC, orjson.dumps({k: v for k, v in pos_event().items()
                                          if k != "transaction_id"}),
                 "missing field 'pos.transaction.transaction_id'", id="missing-field"),
    pytest.param(POS_TOPIC, orjson.dumps({k: v for k, v in pos_event().items() if k != "type"}),
                 "missing field 'type'", id="missing-type"),
    pytest.param(POS_TOPIC, orjson.dumps(pos_event(ts="yesterday")), "field 'pos.transaction.ts'",
                 id="bad-timestamp"),
    pytest.param(POS_TOPIC, orjson.dumps(pos_event(ts="2026-11-21T09:30:00")),
                 "timezone", id="naive-timestamp"),
    pytest.param(POS_TOPIC, orjson.dumps(pos_event(total=1.5)).replace(b"1.5", b"NaN"),
                 "field 'pos.transaction.total': Input should be a finite number", id="nan"),
    pytest.param(POS_TOPIC, orjson.dumps(pos_event(store_id="store-other")),
                 "disagrees with topic store", id="store-mismatch"),
    pytest.param(f"stores/{STORE}/zone/dairy", orjson.dumps(pos_event()),
                 "not allowed on topic kind 'zone'", id="type-topic-mismatch"),
    pytest.param(f"stores/{STORE}/shelf/s1", orjson.dumps({**shelf_event(), "quantity": None}),
                 "one of quantity or weight_g", id="shelf-without-measure"),
    pytest.param(f"stores/{STORE}/pos/till-1",
                 orjson.dumps(pos_event(customer_id="C" * 500)),
                 "at most 128 characters", id="overlong-id"),
]


@pytest.mark.parametrize(("topic", "payload", "reason"), BAD_INPUTS)
def test_bad_message_is_dead_lettered_and_ingestion_goes_on(
        agent: Agent, publisher: Publisher, db_path: Path, topic: str, payload: bytes,
        reason: str) -> None:
    publisher.publish(topic, payload)
    good = zone_event()
    publisher.event(good)
    wait_until(lambda: count(db_path, "SELECT count(*) FROM events WHERE event_id = ?",
                             good["event_id"]) == 1, what="the good event after a bad one")
    (letter,) = rows(db_path, "SELECT topic, reason, raw, raw_size FROM dead_letters")
    assert letter["topic"] == topic
    assert reason in letter["reason"]
    assert letter["raw"] == payload and letter["raw_size"] == len(payload)
    wait_until(lambda: agent.stats().dead_letters_total == 1, what="dead-letter count")
    assert count(db_path, "SELECT count(*) FROM events") == 1


def test_oversized_payload_is_dead_lettered_with_its_size(agent: Agent, publisher: Publisher,
                                                          db_path: Path) -> None:
    limit = agent.settings.max_payload_bytes
    payload = orjson.dumps(pos_event(note="x" * (limit + 10)))
    publisher.publish(POS_TOPIC, payload)
    wait_until(lambda: count(db_path, "SELECT count(*) FROM dead_letters") == 1,
               what="oversized dead letter")
    (letter,) = rows(db_path, "SELECT reason, raw, raw_size FROM dead_letters")
    assert letter["reason"].startswith("oversized payload")
    assert letter["raw_size"] == len(payload)
    assert letter["raw"] == payload[:agent.settings.dead_letter_max_raw_bytes]


def test_a_burst_of_mixed_good_and_bad_messages_loses_nothing(
        agent: Agent, publisher: Publisher, db_path: Path) -> None:
    good = [pos_event() for _ in range(300)]
    for n, event in enumerate(good):
        publisher.event(event)
        if n % 10 == 0:
            publisher.publish(POS_TOPIC, b"{broken")
    publisher.flush()
    wait_until(lambda: count(db_path, "SELECT count(*) FROM events") == 300
               and count(db_path, "SELECT sum(1 + repeats) FROM dead_letters") == 30,
               what="all 300 good and 30 bad")
    assert count(db_path, "SELECT count(*) FROM transaction_items") == 600
    # The counter moves when the writer reports back, just after the rows are visible.
    wait_until(lambda: agent.metrics.registry.get_sample_value(
        "edge_dead_letters_total", {"reason": "not_json"}) == 30, what="dead-letter counter")
