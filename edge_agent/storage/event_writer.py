"""Validating raw MQTT messages and writing a batch of them in one SQLite transaction.

Every message ends up in exactly one place: its event rows (the projections), the
dead-letter table (with the reason and the raw bytes), or nowhere because its `event_id` is
already stored (duplicate).

What is the message's fault and what is the database's is kept apart: anything that goes
wrong validating or projecting one message dead-letters that message (bad input stays bad
input, and the next message is stored); a storage error (disk full, I/O, a lock) is raised,
never dead-lettered, so the caller stops acknowledging until the database takes writes.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlite_utils

from edge_agent.settings import Settings
from edge_agent.storage.consent import withhold_unconsented
from edge_agent.storage.projections import (
    IN_CLAUSE_CHUNK,
    NewEvent,
    Projection,
    build_projections,
    new_event,
)
from models.events import (
    MAX_TOPIC_LENGTH,
    InvalidEvent,
    TimeBounds,
    check_topic_matches,
    format_ts,
    parse_event,
    parse_topic,
    utc_now,
)

logger = logging.getLogger(__name__)

# A reason is a sentence; a hostile payload must not make it a page.
MAX_REASON_CHARS = 500
# Dead-letter log lines: a flood of bad messages must not become a flood of log.
DEAD_LETTER_LOGS_PER_MINUTE = 20


@dataclass(frozen=True)
class RawMessage:
    topic: str
    payload: bytes


@dataclass
class BatchResult:
    stored: Counter[str] = field(default_factory=Counter)  # by event type
    duplicates: int = 0
    dead_letters: Counter[str] = field(default_factory=Counter)  # by InvalidEvent kind
    rejected_positions: list[int] = field(default_factory=list)  # dead-lettered, in the batch
    storage_errors: int = 0  # failed commit attempts before this result was stored
    seconds: float = 0.0  # validating and committing the batch, retries included

    @property
    def stored_total(self) -> int:
        return sum(self.stored.values())

    def add(self, other: BatchResult, offset: int) -> None:
        self.stored.update(other.stored)
        self.dead_letters.update(other.dead_letters)
        self.duplicates += other.duplicates
        self.rejected_positions.extend(offset + p for p in other.rejected_positions)


@dataclass(frozen=True)
class _Rejected:
    topic: str
    payload: bytes
    reason: str
    kind: str
    event_id: str | None


def is_storage_error(exc: BaseException) -> bool:
    """The database or its disk failed, not the message: SQLITE_FULL, I/O errors, locks, a
    read-only or corrupt file, no memory. Such a failure must stop acknowledgements."""
    return (isinstance(exc, sqlite3.OperationalError | sqlite3.InternalError | MemoryError
                       | OSError)
            or type(exc) is sqlite3.DatabaseError)


class EventWriter:
    """Owns one connection to the store database and writes ingestion batches through it."""

    def __init__(self, db: sqlite_utils.Database, *, store_id: str, max_payload_bytes: int,
                 dead_letter_max_raw_bytes: int, time_bounds: TimeBounds | None = None,
                 clock: Callable[[], datetime] = utc_now) -> None:
        self._db = db
        self._projections: list[Projection] = build_projections(db.conn)
        self._store_id = store_id
        self._max_payload_bytes = max_payload_bytes
        self._dead_letter_max_raw_bytes = dead_letter_max_raw_bytes
        self._time_bounds = time_bounds or _time_bounds(Settings.model_construct())
        self._clock = clock
        self._log_limit = _LogLimit(DEAD_LETTER_LOGS_PER_MINUTE)

    @classmethod
    def from_settings(cls, db: sqlite_utils.Database, settings: Settings) -> EventWriter:
        return cls(db, store_id=settings.store_id, max_payload_bytes=settings.max_payload_bytes,
                   dead_letter_max_raw_bytes=settings.dead_letter_max_raw_bytes,
                   time_bounds=_time_bounds(settings))

    def write_batch(self, messages: Sequence[RawMessage]) -> BatchResult:
        """Validate and store `messages` in one transaction. Raises if the database fails,
        or if a projection fails on some message (write_one_by_one then finds which)."""
        now = self._clock()
        received_at = int(now.timestamp())
        valid: list[NewEvent] = []
        rejected: list[_Rejected] = []
        result = BatchResult()
        for position, message in enumerate(messages):
            outcome = self._classify(message, now, received_at)
            if isinstance(outcome, NewEvent):
                valid.append(outcome)
            else:
                rejected.append(outcome)
                result.rejected_positions.append(position)

        conn = self._db.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            fresh = self._drop_duplicates(valid)
            result.duplicates = len(valid) - len(fresh)
            fresh = withhold_unconsented(conn, fresh)
            for projection in self._projections:
                projection.apply(conn, fresh)
            for item in fresh:
                result.stored[item.event.type] += 1
            self._insert_dead_letters(rejected, format_ts(now))
            for item in rejected:
                result.dead_letters[item.kind] += 1
            conn.execute("COMMIT")
        except BaseException:
            _rollback(conn)
            raise
        return result

    def write_one_by_one(self, messages: Sequence[RawMessage]) -> BatchResult:
        """After a batch failed on something other than storage: each message in its own
        transaction, so the one a projection cannot take is dead-lettered and the others
        are stored. A storage error is raised, never filed against a message."""
        total = BatchResult()
        for position, message in enumerate(messages):
            try:
                total.add(self.write_batch([message]), position)
            except Exception as exc:
                if is_storage_error(exc):
                    raise
                logger.exception("could not store a message on %.200s", message.topic)
                self._write_dead_letter(_Rejected(
                    message.topic, message.payload, f"could not store: {exc!r}",
                    "unprocessable", _best_effort_event_id(message.payload)))
                total.dead_letters["unprocessable"] += 1
                total.rejected_positions.append(position)
        return total

    def _write_dead_letter(self, rejected: _Rejected) -> None:
        conn = self._db.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            self._insert_dead_letters([rejected], format_ts(self._clock()))
            conn.execute("COMMIT")
        except BaseException:
            _rollback(conn)
            raise

    def _classify(self, message: RawMessage, now: datetime,
                  received_at: int) -> NewEvent | _Rejected:
        size = len(message.payload)
        if size > self._max_payload_bytes:
            return _Rejected(message.topic, message.payload,
                             f"oversized payload: {size} bytes > limit {self._max_payload_bytes}",
                             "oversized", None)
        try:
            topic = parse_topic(message.topic)
            if topic.store_id != self._store_id:
                raise InvalidEvent(f"topic store {topic.store_id!r} is not this store "
                                   f"{self._store_id!r}", "bad_topic")
            event = parse_event(message.payload)
            check_topic_matches(topic, event)
            self._time_bounds.check(event, now)
            return new_event(event, message.payload, topic.device_id, received_at)
        except InvalidEvent as exc:
            reason, kind = exc.reason, exc.kind
        except Exception as exc:  # whatever a hostile message trips, it is that message's
            reason, kind = f"could not validate: {exc!r}", "invalid"
        return _Rejected(message.topic, message.payload, reason, kind,
                         _best_effort_event_id(message.payload))

    def _drop_duplicates(self, valid: list[NewEvent]) -> list[NewEvent]:
        """Keep the first of each event_id not already stored (QoS 1 redelivers)."""
        by_id: dict[str, NewEvent] = {}
        for item in valid:
            by_id.setdefault(item.event.event_id, item)
        ids = list(by_id)
        for start in range(0, len(ids), IN_CLAUSE_CHUNK):
            chunk = ids[start:start + IN_CLAUSE_CHUNK]
            marks = ",".join("?" * len(chunk))
            for (event_id,) in self._db.conn.execute(
                    f"SELECT event_id FROM events WHERE event_id IN ({marks})", chunk):
                del by_id[event_id]
        return list(by_id.values())

    def _insert_dead_letters(self, rejected: Sequence[_Rejected], received_at: str) -> None:
        if not rejected:
            return
        for item in rejected:
            if self._log_limit.allow():
                logger.warning("dead-lettered message on %.200s: %.200s", item.topic,
                               item.reason)
        # The same bad message again (a retained message on every reconnect, a device
        # resending) counts as a repeat of its first row, not as a new row.
        self._db.conn.executemany(
            "INSERT INTO dead_letters (received_at, topic, reason, raw, raw_size, event_id,"
            " digest, repeats) VALUES (?, ?, ?, ?, ?, ?, ?, 0) ON CONFLICT(digest) DO UPDATE"
            " SET repeats = repeats + 1, last_at = excluded.received_at",
            [(received_at, item.topic[:MAX_TOPIC_LENGTH], item.reason[:MAX_REASON_CHARS],
              item.payload[:self._dead_letter_max_raw_bytes], len(item.payload),
              item.event_id, _digest(item)) for item in rejected])


class _LogLimit:
    """At most `per_minute` lines a minute; says how many it held back."""

    def __init__(self, per_minute: int) -> None:
        self._per_minute = per_minute
        self._window_start = 0.0
        self._count = 0
        self._suppressed = 0

    def allow(self) -> bool:
        now = time.monotonic()
        if now - self._window_start >= 60:
            if self._suppressed:
                logger.warning("%d more dead letters in the last minute (not logged)",
                               self._suppressed)
            self._window_start, self._count, self._suppressed = now, 0, 0
        self._count += 1
        if self._count > self._per_minute:
            self._suppressed += 1
            return False
        return True


def _time_bounds(settings: Settings) -> TimeBounds:
    return TimeBounds(settings.earliest_event_ts, timedelta(seconds=settings.max_clock_ahead_s))


def _rollback(conn: sqlite3.Connection) -> None:
    # SQLite may already have rolled back (SQLITE_FULL, I/O errors): a ROLLBACK then fails
    # with "no transaction is active" and would hide the error that matters.
    if conn.in_transaction:
        try:
            conn.execute("ROLLBACK")
        except sqlite3.Error:
            logger.exception("rollback failed")


def _digest(item: _Rejected) -> bytes:
    hasher = hashlib.blake2b(digest_size=16)
    hasher.update(item.topic.encode("utf-8", "surrogateescape"))
    hasher.update(b"\0")
    hasher.update(item.payload)
    return hasher.digest()


def _best_effort_event_id(payload: bytes) -> str | None:
    """The event_id of a rejected message when one can be read, to help trace its producer."""
    try:
        value = json.loads(payload)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    event_id = value.get("event_id") if isinstance(value, dict) else None
    return event_id[:128] if isinstance(event_id, str) else None
