"""Property: any message, however broken — whatever its timestamp or ids — is stored,
recognised as a duplicate, or dead-lettered: never lost, never an exception (an exception
would be a batch retried forever)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge_agent.storage import open_database
from edge_agent.storage.event_writer import EventWriter, RawMessage
from models.events import TimeBounds
from tests.ingestion.conftest import (
    STORE,
    TOPIC_BY_TYPE,
    interaction_event,
    pos_event,
    presence_event,
    shelf_event,
    zone_event,
)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12)
valid_events = st.sampled_from([pos_event, shelf_event, zone_event, presence_event,
                                interaction_event]).map(lambda make: make())
mutated_events = st.tuples(valid_events, st.text(max_size=12), json_values).map(
    lambda t: {**t[0], t[1]: t[2]})
topics = st.sampled_from(list(TOPIC_BY_TYPE.values())) | st.text(max_size=40) | st.just(
    f"stores/{STORE}/pos/till-1")
payloads = (st.binary(max_size=300) | json_values.map(orjson.dumps)
            | mutated_events.map(orjson.dumps) | valid_events.map(orjson.dumps))
# Timestamps as devices really get them wrong: any year, any offset, junk text.
timestamps = (st.datetimes(timezones=st.timezones()).map(datetime.isoformat)
              | st.builds(lambda y, h, m: f"{y:04d}-01-01T00:00:00{h:+03d}:{m:02d}",
                          st.sampled_from([1, 999, 1000, 1970, 2026, 2099, 9999]),
                          st.integers(-23, 23), st.sampled_from([0, 30, 59]))
              | st.text(max_size=30))
ids = st.text(max_size=200) | st.just("x" * 129) | st.integers(-(2**63), 2**63 - 1)
timed_events = st.tuples(valid_events, timestamps, ids, ids).map(
    lambda t: {**t[0], "ts": t[1], "event_id": t[2], "transaction_id": t[3]})
payloads = payloads | timed_events.map(orjson.dumps)
messages = st.lists(st.builds(RawMessage, topics, payloads), max_size=25)
BOUNDS = TimeBounds(datetime(2000, 1, 1, tzinfo=UTC), timedelta(minutes=5))


def letters(db: object) -> int:
    """Dead letters received, a repeated one counted each time."""
    return db.execute("SELECT COALESCE(SUM(1 + repeats), 0) FROM dead_letters").fetchone()[0]  # type: ignore[attr-defined]


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batch=messages)
def test_every_message_is_accounted_for(tmp_path: Path, batch: list[RawMessage]) -> None:
    db = open_database(tmp_path / "prop.db", synchronous="NORMAL")
    try:
        writer = EventWriter(db, store_id=STORE, max_payload_bytes=400,
                             dead_letter_max_raw_bytes=256, time_bounds=BOUNDS)
        events_before = db["events"].count
        letters_before = letters(db)
        result = writer.write_batch(batch)
        stored = db["events"].count - events_before
        lettered = letters(db) - letters_before
        assert stored == result.stored_total
        assert lettered == sum(result.dead_letters.values())
        assert stored + lettered + result.duplicates == len(batch)
    finally:
        db.close()
