"""Validating raw MQTT messages and writing a batch of them in one SQLite transaction.

Every message ends up in exactly one place: its event rows, the dead-letter table (with the
reason and the raw bytes), or nowhere because its `event_id` is already stored (duplicate).
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import sqlite_utils

from edge_agent.features.store import FeatureUpdater, Sale
from models.events import (
    Event,
    Interaction,
    InvalidEvent,
    PosTransaction,
    Presence,
    ShelfReading,
    Topic,
    ZoneTraffic,
    check_topic_matches,
    format_ts,
    parse_event,
    parse_topic,
    utc_now,
)

logger = logging.getLogger(__name__)

# SQLite's bound-parameter limit is 32,766 in current builds; stay well under it.
_IN_CLAUSE_CHUNK = 500


@dataclass(frozen=True)
class RawMessage:
    topic: str
    payload: bytes


@dataclass
class BatchResult:
    stored: Counter[str] = field(default_factory=Counter)  # by event type
    duplicates: int = 0
    dead_letters: Counter[str] = field(default_factory=Counter)  # by reason kind
    storage_errors: int = 0  # failed commit attempts before this result was stored
    seconds: float = 0.0  # validating and committing the batch, retries included

    @property
    def stored_total(self) -> int:
        return sum(self.stored.values())


@dataclass(frozen=True)
class _Valid:
    topic: Topic
    raw_topic: str
    payload: bytes
    event: Event


@dataclass(frozen=True)
class _Rejected:
    topic: str
    payload: bytes
    reason: str
    event_id: str | None


class EventWriter:
    """Owns one connection to the store database and writes ingestion batches through it."""

    def __init__(self, db: sqlite_utils.Database, *, store_id: str, max_payload_bytes: int,
                 dead_letter_max_raw_bytes: int) -> None:
        self._db = db
        self._features = FeatureUpdater(db.conn)
        self._store_id = store_id
        self._max_payload_bytes = max_payload_bytes
        self._dead_letter_max_raw_bytes = dead_letter_max_raw_bytes

    def write_batch(self, messages: Sequence[RawMessage]) -> BatchResult:
        """Validate and store `messages` in one transaction; raises only if SQLite fails."""
        valid: list[_Valid] = []
        rejected: list[_Rejected] = []
        for message in messages:
            outcome = self._classify(message)
            (valid if isinstance(outcome, _Valid) else rejected).append(outcome)  # type: ignore[arg-type]

        result = BatchResult()
        received_at = format_ts(utc_now())
        conn = self._db.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            fresh = self._drop_duplicates(valid)
            result.duplicates = len(valid) - len(fresh)
            self._insert_events(fresh, received_at)
            for item in fresh:
                result.stored[item.event.type] += 1
            self._insert_dead_letters(rejected, received_at)
            for item in rejected:
                result.dead_letters[_reason_kind(item.reason)] += 1
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return result

    def write_one_by_one(self, messages: Sequence[RawMessage]) -> BatchResult:
        """Fallback after a batch failed to commit: each message in its own transaction, and
        one that still fails is dead-lettered with the storage error as its reason."""
        total = BatchResult()
        for message in messages:
            try:
                result = self.write_batch([message])
            except sqlite3.DatabaseError as exc:
                reason = f"storage error: {exc}"
                self._write_dead_letters([_Rejected(message.topic, message.payload, reason,
                                                    _best_effort_event_id(message.payload))])
                result = BatchResult(dead_letters=Counter({"storage_error": 1}))
            total.stored.update(result.stored)
            total.dead_letters.update(result.dead_letters)
            total.duplicates += result.duplicates
        return total

    def _write_dead_letters(self, rejected: Sequence[_Rejected]) -> None:
        conn = self._db.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            self._insert_dead_letters(rejected, format_ts(utc_now()))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def _classify(self, message: RawMessage) -> _Valid | _Rejected:
        size = len(message.payload)
        if size > self._max_payload_bytes:
            return _Rejected(message.topic, message.payload,
                             f"oversized payload: {size} bytes > limit {self._max_payload_bytes}",
                             None)
        try:
            topic = parse_topic(message.topic)
            if topic.store_id != self._store_id:
                raise InvalidEvent(f"topic store {topic.store_id!r} is not this store "
                                   f"{self._store_id!r}")
            event = parse_event(message.payload)
            check_topic_matches(topic, event)
        except InvalidEvent as exc:
            return _Rejected(message.topic, message.payload, exc.reason,
                             _best_effort_event_id(message.payload))
        return _Valid(topic, message.topic, message.payload, event)

    def _drop_duplicates(self, valid: list[_Valid]) -> list[_Valid]:
        """Keep the first of each event_id not already stored (QoS 1 redelivers)."""
        by_id: dict[str, _Valid] = {}
        for item in valid:
            by_id.setdefault(item.event.event_id, item)
        ids = list(by_id)
        for start in range(0, len(ids), _IN_CLAUSE_CHUNK):
            chunk = ids[start:start + _IN_CLAUSE_CHUNK]
            marks = ",".join("?" * len(chunk))
            for (event_id,) in self._db.conn.execute(
                    f"SELECT event_id FROM events WHERE event_id IN ({marks})", chunk):
                del by_id[event_id]
        return list(by_id.values())

    def _insert_events(self, items: Iterable[_Valid], received_at: str) -> None:
        events, transactions, lines, shelves, zones, presence, interactions = (
            [], [], [], [], [], [], [])
        sales: list[Sale] = []
        daily: dict[tuple[str, str], list[float]] = {}  # (product, day) → [baskets, units]
        for item in items:
            event = item.event
            ts = format_ts(event.ts)
            events.append((event.event_id, event.store_id, event.type, item.raw_topic, ts,
                           received_at, item.payload.decode("utf-8", errors="replace")))
            device = item.topic.device_id
            if isinstance(event, PosTransaction):
                transactions.append((event.transaction_id, event.event_id, event.store_id,
                                     device, event.customer_id, ts, event.total,
                                     len(event.items)))
                lines.extend((event.transaction_id, n, line.product_id, line.quantity,
                              line.unit_price, line.discount)
                             for n, line in enumerate(event.items))
                _count_daily(daily, ts[:10], event)
                if event.customer_id is not None:
                    sales.append(Sale(event.customer_id, event.ts.timestamp(), event.total,
                                      [(line.product_id, line.quantity) for line in event.items]))
            elif isinstance(event, ShelfReading):
                shelves.append((device, event.product_id, event.quantity, event.weight_g,
                                event.capacity, ts, event.event_id))
            elif isinstance(event, ZoneTraffic):
                zones.append((event.event_id, device, ts, event.people, event.avg_dwell_s))
            elif isinstance(event, Presence):
                presence.append((event.event_id, device, event.customer_id, event.zone_id, ts))
            elif isinstance(event, Interaction):
                interactions.append((event.event_id, device, event.customer_id, event.action,
                                     event.product_id, event.context, event.model_version, ts))
        conn = self._db.conn
        conn.executemany("INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?)", events)
        # A till that retries a sale under a new event_id must not count it twice.
        conn.executemany(
            "INSERT OR IGNORE INTO transactions (transaction_id, event_id, store_id, register_id,"
            " customer_id, ts, total, item_count) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", transactions)
        conn.executemany(
            "INSERT OR IGNORE INTO transaction_items (transaction_id, line_no, product_id,"
            " quantity, unit_price, discount) VALUES (?, ?, ?, ?, ?, ?)", lines)
        # Readings can arrive out of order (redelivery): only a newer one replaces the state.
        conn.executemany(
            "INSERT INTO shelf_state (shelf_id, product_id, quantity, weight_g, capacity, ts,"
            " event_id) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(shelf_id) DO UPDATE SET"
            " product_id=excluded.product_id, quantity=excluded.quantity,"
            " weight_g=excluded.weight_g, capacity=excluded.capacity, ts=excluded.ts,"
            " event_id=excluded.event_id WHERE excluded.ts >= shelf_state.ts", shelves)
        conn.executemany("INSERT INTO zone_traffic VALUES (?, ?, ?, ?, ?)", zones)
        conn.executemany("INSERT INTO presence VALUES (?, ?, ?, ?, ?)", presence)
        conn.executemany("INSERT INTO interactions VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                         interactions)
        conn.executemany(
            "INSERT INTO product_daily_sales (product_id, day, baskets, units)"
            " VALUES (?, ?, ?, ?) ON CONFLICT(product_id, day) DO UPDATE SET"
            " baskets = baskets + excluded.baskets, units = units + excluded.units",
            [(pid, day, int(b), u) for (pid, day), (b, u) in daily.items()])
        # In this transaction: a sale's effect on its shopper's features commits with it.
        self._features.apply(sales)

    def _insert_dead_letters(self, rejected: Sequence[_Rejected], received_at: str) -> None:
        if not rejected:
            return
        for item in rejected:
            logger.warning("dead-lettered message on %s: %s", item.topic, item.reason)
        self._db.conn.executemany(
            "INSERT INTO dead_letters (received_at, topic, reason, raw, raw_size, event_id)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            [(received_at, item.topic, item.reason,
              item.payload[:self._dead_letter_max_raw_bytes], len(item.payload), item.event_id)
             for item in rejected])


def _count_daily(daily: dict[tuple[str, str], list[float]], day: str,
                 sale: PosTransaction) -> None:
    """Add a sale to the per-product daily totals (a product counts once per basket)."""
    seen = set()
    for line in sale.items:
        totals = daily.setdefault((line.product_id, day), [0.0, 0.0])
        totals[1] += line.quantity
        if line.product_id not in seen:
            seen.add(line.product_id)
            totals[0] += 1


def _best_effort_event_id(payload: bytes) -> str | None:
    """The event_id of a rejected message when one can be read, to help trace its producer."""
    try:
        value = json.loads(payload)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    event_id = value.get("event_id") if isinstance(value, dict) else None
    return event_id[:128] if isinstance(event_id, str) else None


def _reason_kind(reason: str) -> str:
    """A low-cardinality label for metrics, from the free-text reason."""
    for prefix, kind in (("oversized", "oversized"), ("not valid JSON", "not_json"),
                         ("payload is not a JSON object", "not_json"),
                         ("unknown type", "unknown_type"), ("missing field", "missing_field"),
                         ("field ", "bad_field"), ("topic", "bad_topic"),
                         ("payload store_id", "store_mismatch"), ("type ", "topic_mismatch")):
        if reason.startswith(prefix):
            return kind
    return "invalid"
