"""Retention: deleting what the store no longer needs, a few thousand rows at a time.

Why: a store's disk is small and nobody empties it. At a busy store's rates the raw event
log alone grows by gigabytes a week (docs/storage.md), so raw rows are kept for days and
sales for a year (the models learn yearly rhythms), then deleted.

Why in small batches: the ingestion writer is another process committing to the same WAL
database every few tens of milliseconds, and it waits at most `busy_timeout` (5 s) for the
write lock. One DELETE of a day of events would hold that lock for seconds, so each purge
transaction deletes at most `batch_rows` rows of one table (a few milliseconds), pauses so
a waiting writer gets the lock, and a call stops once its time budget is spent: its result
says whether more is left, and the caller calls again soon.

What is kept, and for how long (the settings; docs/storage.md has the defaults and sizes):
- events, the raw log and the uplink's outbox: `retention_events_days`, by `received_at`;
- zone_traffic and presence: `retention_sensor_days`, by `ts`;
- interactions: `retention_interactions_days`, by `ts`;
- dead_letters: `retention_dead_letters_days` by `received_at`, and only the newest
  `dead_letter_max_rows` (a flood of junk must not fill the disk within the period);
- transactions (their lines go with them, ON DELETE CASCADE) and product_daily_sales:
  `retention_sales_days`, by `ts` and `day`.

Events go by when they arrived, not by their `ts`: a back-filled history (a till back
online, a dataset replay) carries old timestamps, and must stay for the retention period
after it arrived. With a cloud link they also wait for the uplink's acknowledgement,
unless the operator set `uplink_max_unsent_days`. Not purged: one-row-per-thing state (shelf_state,
shopper_features, products, customers).

A purge statement should find its rows through an index on its condition, so that a batch
costs the same however big the table (`tests/test_retention.py` checks the plans). Not yet
for zone_traffic, presence and interactions: they have no index on `ts` alone, so their
batches scan a (zone_id, ts) or (customer_id, ts) index, inside the write transaction.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from edge_agent.settings import Settings
from models.events import format_ts

logger = logging.getLogger(__name__)

# Rows one purge transaction deletes from a table. On the 2-core development machine the
# DELETE of 2,000 events with their index entries takes ~5 ms (13 ms at worst) and its
# commit a few more: a wait the writer, committing every ~50 ms, barely notices. Far fewer
# rows would spend the purge's time on commits rather than on deleting.
DEFAULT_BATCH_ROWS = 2000
# Wall-clock time one call may spend, pauses included: the purge's thread is back within it
# whatever the backlog (which takes more calls), and it stays far below the writer's 5 s
# busy timeout even if every transaction of the call were in the writer's way.
TIME_BUDGET_S = 0.5
# After each transaction the purge sleeps as long as that transaction held the lock (at least
# this long): SQLite's busy handler polls rather than queues, so a purge that took the lock
# straight back would win every race and the writer would wait for the whole call.
MIN_PAUSE_S = 0.002
# A sale deletes its lines with it (ON DELETE CASCADE). With a dozen lines to a basket, a
# batch of batch_rows / 13 sales touches about batch_rows rows in all.
ROWS_PER_SALE = 13
# Events deleted before the cloud acknowledged them (uplink_max_unsent_days), counted apart.
UNSENT_EVENTS = "events_unsent"


@dataclass
class PurgeResult:
    """What one `purge_once` call did."""

    deleted: Counter[str] = field(default_factory=Counter)  # rows by table (lines included)
    more: bool = False  # stopped at the time budget with rows still due: call again soon
    transactions: int = 0  # write transactions committed
    seconds: float = 0.0  # the whole call, pauses included
    # The longest from BEGIN IMMEDIATE to COMMIT done (a WAL checkpoint the commit runs,
    # which does not hold the write lock, included).
    longest_transaction_s: float = 0.0

    @property
    def total(self) -> int:
        return sum(self.deleted.values())


@dataclass(frozen=True)
class PurgeStep:
    """Deleting the rows of one table that `where` selects, a batch at a time."""

    table: str
    where: str  # on the table's own columns, served by an index
    params: tuple[object, ...] = ()
    key: str = "rowid"
    order_by: str = ""  # empty: whatever order the index gives
    rows_per_key: int = 1  # rows one deletion removes in all (a sale takes its lines)
    cascades_to: str = ""  # the table whose rows go with these (ON DELETE CASCADE)
    counted_as: str = ""  # the name its deletions are counted under (default: the table)
    # At most this many rows may still go (None: all that `where` selects); asked before
    # each batch, outside the write transaction.
    remaining: Callable[[sqlite3.Connection], int] | None = None

    @property
    def select_sql(self) -> str:
        order = f" ORDER BY {self.order_by}" if self.order_by else ""
        return f"SELECT {self.key} FROM {self.table} WHERE {self.where}{order} LIMIT ?"

    @property
    def delete_sql(self) -> str:
        return f"DELETE FROM {self.table} WHERE {self.key} IN ({self.select_sql})"

    def batch_limit(self, batch_rows: int) -> int:
        return max(1, batch_rows // self.rows_per_key)


def purge_once(conn: sqlite3.Connection, settings: Settings, now: datetime,
               batch_rows: int = DEFAULT_BATCH_ROWS, *,
               time_budget_s: float = TIME_BUDGET_S) -> PurgeResult:
    """Delete rows past their retention at `now`, at most `batch_rows` per table per
    transaction, until none is left or `time_budget_s` is spent.

    Every table gets at least one batch per call (a call always makes progress); then
    batches go round the tables while time is left. `more` in the result means rows are
    still due: call again after a short pause rather than after the full interval.
    A storage error (the lock not obtained within busy_timeout, a full disk) is raised;
    whatever was committed before it stays deleted.
    """
    if batch_rows < 1:
        raise ValueError(f"batch_rows must be at least 1, not {batch_rows}")
    if not conn.execute("PRAGMA foreign_keys").fetchone()[0]:
        # Without it, deleting a sale would leave its lines behind for ever.
        raise ValueError("purge_once needs PRAGMA foreign_keys = ON (open_database sets it)")
    started = time.monotonic()
    result = PurgeResult()
    pending = purge_steps(settings, now)
    first_round = True
    while pending and not result.more:
        for step in list(pending):
            if not first_round and time.monotonic() - started >= time_budget_s:
                result.more = True
                break
            if not _delete_batch(conn, step, batch_rows, result):
                pending.remove(step)
        first_round = False
    result.seconds = time.monotonic() - started
    return result


def purge_steps(settings: Settings, now: datetime) -> list[PurgeStep]:
    """The purge's statements at `now`, in the order a round runs them."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")

    def before(days: float) -> datetime:
        return now - timedelta(days=days)

    sensor_cutoff = format_ts(before(settings.retention_sensor_days))
    max_rows = settings.dead_letter_max_rows
    linked = settings.cloud_credentials is not None
    steps = [expired_events_step(before(settings.retention_events_days), uplinked_only=linked)]
    if linked and settings.uplink_max_unsent_days is not None:
        # The operator's choice of what gives way to a link down for too long.
        steps.append(PurgeStep("events", "received_at < ?",
                               (int(before(settings.uplink_max_unsent_days).timestamp()),),
                               counted_as=UNSENT_EVENTS))
    return [
        *steps,
        PurgeStep("zone_traffic", "ts < ?", (sensor_cutoff,)),
        PurgeStep("presence", "ts < ?", (sensor_cutoff,)),
        PurgeStep("interactions", "ts < ?",
                  (format_ts(before(settings.retention_interactions_days)),)),
        PurgeStep("dead_letters", "received_at < ?",
                  (format_ts(before(settings.retention_dead_letters_days)),)),
        # The count cap, oldest (first stored) first, after the age purge in each round.
        PurgeStep("dead_letters", "1", key="id", order_by="id",
                  remaining=lambda c: max(0, _count(c, "dead_letters") - max_rows)),
        PurgeStep("transactions", "ts < ?", (format_ts(before(settings.retention_sales_days)),),
                  rows_per_key=ROWS_PER_SALE, cascades_to="transaction_items"),
        PurgeStep("product_daily_sales", "day < ?",
                  (before(settings.retention_sales_days).date().isoformat(),)),
    ]


def expired_events_step(received_before: datetime, *, uplinked_only: bool) -> PurgeStep:
    """The raw event log: events that arrived before the cut-off, whatever their `ts`.

    The event log is also the uplink's outbox (`seq` is the commit order): with a cloud link,
    only events the lake confirmed writing go (`uplink_cursor.lake_seq`), so an event the
    cloud has not stored yet is never deleted by age.
    """
    where = "received_at < ?"
    if uplinked_only:
        where += " AND seq <= (SELECT lake_seq FROM uplink_cursor WHERE id = 1)"
    return PurgeStep("events", where, (int(received_before.timestamp()),))


def _delete_batch(conn: sqlite3.Connection, step: PurgeStep, batch_rows: int,
                  result: PurgeResult) -> bool:
    """One short write transaction; True when the step may have rows left."""
    limit = step.batch_limit(batch_rows)
    if step.remaining is not None:
        limit = min(limit, step.remaining(conn))
        if limit <= 0:
            return False
    conn.execute("BEGIN IMMEDIATE")  # waits up to busy_timeout for the writer's commit
    began = time.monotonic()
    try:
        changes_before = conn.total_changes
        deleted = conn.execute(step.delete_sql, (*step.params, limit)).rowcount
        cascaded = conn.total_changes - changes_before - deleted
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:  # SQLite may already have rolled back (disk full, I/O)
            try:
                conn.execute("ROLLBACK")
            except sqlite3.Error:  # would hide the error that matters
                logger.exception("rollback of a purge batch failed")
        raise
    held = time.monotonic() - began
    result.transactions += 1
    result.longest_transaction_s = max(result.longest_transaction_s, held)
    if deleted:
        result.deleted[step.counted_as or step.table] += deleted
        if step.cascades_to:
            result.deleted[step.cascades_to] += cascaded
        time.sleep(max(held, MIN_PAUSE_S))
    return deleted == limit


def _count(conn: sqlite3.Connection, table: str) -> int:
    return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
