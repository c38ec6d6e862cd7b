"""Retention: what a store keeps, for how long, and that purging a backlog never stalls the
writer. Rows are written the way ingestion writes them (EventWriter, raw MQTT messages),
with the writer's clock set in the past to make them old."""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
import sqlite_utils

from edge_agent.settings import Settings, load_settings
from edge_agent.storage import open_database
from edge_agent.storage.event_writer import BatchResult, EventWriter, RawMessage
from edge_agent.storage.retention import PurgeResult, purge_once, purge_steps
from models.events import TimeBounds, format_ts

STORE = "store-ret"
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
LINES_PER_SALE = 12


# The shipped defaults, spelled out: the tests below date their rows around them.
RETENTION = {"retention_events_days": 3, "retention_sensor_days": 7,
             "retention_interactions_days": 90, "retention_dead_letters_days": 14,
             "retention_sales_days": 400}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(store_id=STORE, db=str(tmp_path / "edge.db"), **RETENTION)


@pytest.fixture
def db(settings: Settings) -> Iterator[sqlite_utils.Database]:
    database = open_database(settings.db)
    # The shopper of these events consented: their presence and clicks are kept.
    database["customers"].insert({"customer_id": "C00007", "consent_personalization": 1})
    yield database
    database.conn.close()


def writer_at(db: sqlite_utils.Database, settings: Settings, when: datetime) -> EventWriter:
    """The ingestion writer with its clock stopped at `when`."""
    return EventWriter(db, store_id=settings.store_id,
                       max_payload_bytes=settings.max_payload_bytes,
                       dead_letter_max_raw_bytes=settings.dead_letter_max_raw_bytes,
                       time_bounds=TimeBounds(settings.earliest_event_ts,
                                              timedelta(seconds=settings.max_clock_ahead_s)),
                       clock=lambda: when)


def event(kind: str, ts: datetime, **fields: Any) -> RawMessage:
    """A valid message of `kind` (topic kind) with its own event id, stamped `ts`."""
    event_type, device = {"shelf": ("shelf.reading", "SH-P000042"),
                          "zone": ("zone.traffic", "dairy"),
                          "presence": ("presence", "app-C00007"),
                          "interaction": ("interaction", "kiosk-01"),
                          "pos": ("pos.transaction", "till-01")}[kind]
    body: dict[str, Any] = {
        "shelf": {"product_id": "P000042", "quantity": 7, "capacity": 24},
        "zone": {"people": 4, "avg_dwell_s": 61.5},
        "presence": {"customer_id": "C00007", "zone_id": "dairy"},
        "interaction": {"customer_id": "C00007", "action": "click", "product_id": "P000042",
                        "context": "recommendations", "model_version": "ranker-1"},
        "pos": {"transaction_id": f"T-{uuid.uuid4()}", "customer_id": "C00007",
                "items": [{"product_id": f"P{n:06d}", "quantity": 1.0, "unit_price": 2.5,
                           "discount": 0.0} for n in range(LINES_PER_SALE)],
                "total": 2.5 * LINES_PER_SALE},
    }[kind]
    payload = {"event_id": str(uuid.uuid4()), "store_id": STORE, "ts": format_ts(ts),
               "type": event_type, **body, **fields}
    return RawMessage(f"stores/{STORE}/{kind}/{device}", orjson.dumps(payload))


def event_id(message: RawMessage) -> str:
    return orjson.loads(message.payload)["event_id"]


def write(db: sqlite_utils.Database, settings: Settings, when: datetime,
          messages: list[RawMessage]) -> BatchResult:
    result = writer_at(db, settings, when).write_batch(messages)
    assert result.stored_total + sum(result.dead_letters.values()) == len(messages)
    return result


def column(db: sqlite_utils.Database, sql: str, *params: object) -> set[Any]:
    return {row[0] for row in db.execute(sql, params)}


def count(db: sqlite_utils.Database, table: str) -> int:
    return db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def purge_all(db: sqlite_utils.Database, settings: Settings, now: datetime,
              **kwargs: Any) -> list[PurgeResult]:
    results = [purge_once(db.conn, settings, now, **kwargs)]
    while results[-1].more:
        assert len(results) < 10_000, "the purge never finishes"
        results.append(purge_once(db.conn, settings, now, **kwargs))
    return results


def test_old_rows_of_each_table_go_and_recent_ones_stay(
        db: sqlite_utils.Database, settings: Settings) -> None:
    ago = {name: NOW - delta for name, delta in {
        "recent": timedelta(hours=1), "5d": timedelta(days=5), "10d": timedelta(days=10),
        "20d": timedelta(days=20), "60d": timedelta(days=60), "100d": timedelta(days=100),
        "300d": timedelta(days=300), "420d": timedelta(days=420)}.items()}
    written: dict[str, dict[str, RawMessage]] = {}
    for when, kinds in [("recent", ["shelf", "zone", "presence", "interaction", "pos"]),
                        ("5d", ["shelf", "zone", "presence"]), ("10d", ["zone", "presence"]),
                        ("60d", ["interaction"]), ("100d", ["interaction"]),
                        ("300d", ["pos"]), ("420d", ["pos"])]:
        written[when] = {kind: event(kind, ago[when]) for kind in kinds}
        write(db, settings, ago[when], list(written[when].values()))
    for when in ("recent", "20d"):
        write(db, settings, ago[when], [RawMessage(f"stores/{STORE}/zone/dairy",
                                                   f"junk from {when}".encode())])

    def ids(when: str, *kinds: str) -> set[str]:
        return {event_id(written[when][k]) for k in kinds}

    def sale(when: str) -> str:
        return orjson.loads(written[when]["pos"].payload)["transaction_id"]

    def state() -> dict[str, set[Any]]:
        return {
            "events": column(db, "SELECT event_id FROM events"),
            "zone_traffic": column(db, "SELECT event_id FROM zone_traffic"),
            "presence": column(db, "SELECT event_id FROM presence"),
            "interactions": column(db, "SELECT event_id FROM interactions"),
            "dead_letters": column(db, "SELECT raw FROM dead_letters"),
            "sales": column(db, "SELECT transaction_id FROM transactions"),
            "sale_lines": column(db, "SELECT t.transaction_id || ':' || count(*) FROM"
                                     " transactions t JOIN transaction_items USING (sale_id)"
                                     " GROUP BY t.transaction_id"),
            "sale_days": column(db, "SELECT DISTINCT day FROM product_daily_sales"),
        }

    before = state()
    assert len(before["events"]) == 14  # everything was stored, old rows included
    assert before["dead_letters"] == {b"junk from recent", b"junk from 20d"}
    assert len(before["sale_days"]) == 3

    results = purge_all(db, settings, NOW)

    after = state()
    assert after["events"] == ids("recent", "shelf", "zone", "presence", "interaction", "pos")
    assert after["zone_traffic"] == ids("recent", "zone") | ids("5d", "zone")
    assert after["presence"] == ids("recent", "presence") | ids("5d", "presence")
    assert after["interactions"] == ids("recent", "interaction") | ids("60d", "interaction")
    assert after["dead_letters"] == {b"junk from recent"}
    assert after["sales"] == {sale("recent"), sale("300d")}
    assert after["sale_lines"] == {f"{sale(w)}:{LINES_PER_SALE}" for w in ("recent", "300d")}
    assert count(db, "transaction_items") == 2 * LINES_PER_SALE  # the old sale's lines too
    assert after["sale_days"] == {ago[w].date().isoformat() for w in ("recent", "300d")}
    deleted = sum((r.deleted for r in results), start=Counter[str]())
    assert deleted == {"events": 9, "zone_traffic": 1, "presence": 1, "interactions": 1,
                       "dead_letters": 1, "transactions": 1,
                       "transaction_items": LINES_PER_SALE,
                       "product_daily_sales": LINES_PER_SALE}
    # Nothing is left to do, and a second purge finds nothing.
    again = purge_once(db.conn, settings, NOW)
    assert again.total == 0 and not again.more
    assert state() == after


def test_dead_letters_are_capped_at_the_newest(tmp_path: Path) -> None:
    settings = load_settings(store_id=STORE, db=str(tmp_path / "edge.db"),
                             dead_letter_max_rows=100, **RETENTION)
    db = open_database(settings.db)
    for n in range(250):  # all within retention: only the count cap applies
        write(db, settings, NOW - timedelta(hours=2) + timedelta(seconds=n),
              [RawMessage(f"stores/{STORE}/zone/dairy", f"junk {n:03d}".encode())])
    assert count(db, "dead_letters") == 250

    purge_all(db, settings, NOW, batch_rows=40)

    assert column(db, "SELECT raw FROM dead_letters") == {
        f"junk {n:03d}".encode() for n in range(150, 250)}
    assert purge_once(db.conn, settings, NOW).total == 0  # at the cap, nothing more goes
    db.conn.close()


def test_backfilled_history_is_kept_for_the_retention_after_it_arrived(
        db: sqlite_utils.Database, settings: Settings) -> None:
    # A till back online sends four weeks of sales, and a gateway its buffered shelf readings.
    arrived = NOW - timedelta(hours=1)
    history = [event("pos", NOW - timedelta(days=28, hours=n)) for n in range(20)]
    history += [event("shelf", NOW - timedelta(days=10, minutes=n)) for n in range(20)]
    write(db, settings, arrived, history)

    assert purge_all(db, settings, NOW)[0].deleted["events"] == 0
    assert count(db, "events") == 40

    # Once it has been kept for retention_events_days since it arrived, it goes (the sales
    # themselves stay for a year).
    later = arrived + timedelta(days=settings.retention_events_days, minutes=1)
    assert sum(r.deleted["events"] for r in purge_all(db, settings, later)) == 40
    assert count(db, "events") == 0
    assert count(db, "transactions") == 20


def write_backlog(db: sqlite_utils.Database, settings: Settings, events: int,
                  when: datetime) -> None:
    writer = writer_at(db, settings, when)
    for start in range(0, events, 1000):
        batch = [event("shelf", when) for _ in range(min(1000, events - start))]
        assert writer.write_batch(batch).stored_total == len(batch)


def test_a_large_backlog_goes_in_bounded_batches(
        db: sqlite_utils.Database, settings: Settings) -> None:
    write_backlog(db, settings, 50_000, NOW - timedelta(days=10))
    recent = [event("shelf", NOW - timedelta(minutes=5)) for _ in range(10)]
    write(db, settings, NOW - timedelta(minutes=5), recent)
    # Rows each write transaction changed, seen from the statements the purge runs.
    changed: list[int] = []
    started_at = [0]

    def trace(sql: str) -> None:
        if sql.startswith("BEGIN"):
            started_at[0] = db.conn.total_changes
        elif sql == "COMMIT":
            changed.append(db.conn.total_changes - started_at[0])

    db.conn.set_trace_callback(trace)
    # No time budget: each call does one round, one batch per table.
    results = purge_all(db, settings, NOW, batch_rows=1000, time_budget_s=0)
    db.conn.set_trace_callback(None)

    assert [r.deleted["events"] for r in results[:50]] == [1000] * 50
    assert all(r.more for r in results[:50]) and not results[-1].more
    assert len(results) <= 52
    assert max(changed) == 1000 and len(changed) >= 50
    assert column(db, "SELECT event_id FROM events") == {event_id(m) for m in recent}


def test_a_call_stops_at_its_time_budget(
        db: sqlite_utils.Database, settings: Settings) -> None:
    write_backlog(db, settings, 50_000, NOW - timedelta(days=10))
    result = purge_once(db.conn, settings, NOW, batch_rows=500, time_budget_s=0.05)
    assert result.more
    assert 500 <= result.deleted["events"] < 50_000
    assert result.seconds < 2.0  # the budget plus at most one batch, with a lot of slack
    assert count(db, "events") == 50_000 - result.deleted["events"]


def test_the_writer_keeps_committing_during_a_long_purge(
        db: sqlite_utils.Database, settings: Settings) -> None:
    write_backlog(db, settings, 60_000, NOW - timedelta(days=10))
    outcome: list[PurgeResult] = []
    # The purge on its own connection, as the agent runs it, beside the writer's.
    purger = open_database(settings.db, check_same_thread=False)
    purging = threading.Thread(target=lambda: outcome.append(purge_once(
        purger.conn, settings, NOW, batch_rows=1000, time_budget_s=60)))
    writer = writer_at(db, settings, NOW)
    waits = []
    purging.start()
    while purging.is_alive():
        began = time.monotonic()
        assert writer.write_batch([event("shelf", NOW)]).stored_total == 1
        waits.append(time.monotonic() - began)
        time.sleep(0.01)
    purging.join()
    purger.conn.close()

    assert outcome[0].deleted["events"] == 60_000 and not outcome[0].more
    # The purge took the lock for 60 transactions, and the writer got in between them: it
    # committed all along and never waited for more than a small part of the purge (a purge
    # that took the lock straight back would make it wait for nearly the whole call).
    assert outcome[0].transactions >= 60
    assert len(waits) >= 10
    assert max(waits) < outcome[0].seconds / 4, (max(waits), outcome[0].seconds)


@pytest.mark.parametrize("table", [
    "events", "dead_letters", "transactions", "product_daily_sales", "zone_traffic",
    "presence", "interactions",
])
def test_each_batch_finds_its_rows_through_an_index(
        db: sqlite_utils.Database, settings: Settings, table: str) -> None:
    for step in purge_steps(settings, NOW):
        if step.table != table:
            continue
        plan = " / ".join(row[3] for row in db.execute(
            f"EXPLAIN QUERY PLAN {step.delete_sql}", (*step.params, 1)))
        assert "TEMP B-TREE" not in plan, plan  # no sort of the whole table
        if step.order_by:  # the dead-letter cap: the first rows in id order, then stop
            assert f"SCAN {table}" in plan, plan
        else:
            assert f"SEARCH {table} USING COVERING INDEX" in plan, plan


def test_refuses_a_connection_without_foreign_keys(
        db: sqlite_utils.Database, settings: Settings) -> None:
    db.conn.execute("PRAGMA foreign_keys = OFF")
    with pytest.raises(ValueError, match="foreign_keys"):
        purge_once(db.conn, settings, NOW)
