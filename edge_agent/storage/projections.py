"""What a stored event changes, table by table: the projections the writer runs, in order,
inside each batch's transaction.

Each projection is idempotent on its business key, so a retry cannot count anything twice:
the event log on `event_id` (the writer drops stored ids before any projection runs), sales
on `transaction_id` (a till that retries a sale under a new `event_id` changes nothing:
neither the sale, nor daily totals, nor the shopper's features), sensor tables on their
event's id. "Latest" state (a shelf's reading) moves only forward in time; the writer has
already refused timestamps from the far future (models.events.TimeBounds).

The uplink's outbox is the event log itself: its `seq` is the commit order.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

import orjson

from edge_agent.features.store import FeatureUpdater, Sale
from models.events import (
    Event,
    Interaction,
    PosTransaction,
    Presence,
    ShelfReading,
    ZoneTraffic,
    format_ts,
)

# The envelope is kept in the event log's columns; the body holds the rest of the payload.
ENVELOPE_FIELDS = frozenset({"event_id", "store_id", "ts", "type"})
# SQLite's bound-parameter limit is 32,766 in current builds; stay well under it.
IN_CLAUSE_CHUNK = 500


@dataclass(frozen=True, slots=True)
class NewEvent:
    """A valid event not stored before, as the projections see it."""

    event: Event
    payload: bytes  # as received: fields newer firmware added are kept for the cloud
    device_id: str  # the topic's last segment: till, shelf, zone sensor, cart, kiosk
    ts: str  # format_ts(event.ts): fixed-width UTC text, ordered as a string
    received_at: int  # epoch seconds at the writer


class Projection(Protocol):
    def apply(self, conn: sqlite3.Connection, events: Sequence[NewEvent]) -> None:
        """Write what `events` change, inside the caller's transaction."""


class EventLog:
    """Every stored event, in commit order: deduplication, retention and the uplink."""

    def apply(self, conn: sqlite3.Connection, events: Sequence[NewEvent]) -> None:
        conn.executemany(
            "INSERT INTO events (event_id, type, device_id, ts, received_at, body)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            [(item.event.event_id, item.event.type, item.device_id, item.ts, item.received_at,
              _body(item.payload)) for item in events])


class Sales:
    """Sales, their lines, per-product daily totals and shoppers' features, once per
    `transaction_id`."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._features = FeatureUpdater(conn)

    def apply(self, conn: sqlite3.Connection, events: Sequence[NewEvent]) -> None:
        sales = _first_of_each_transaction(
            item for item in events if isinstance(item.event, PosTransaction))
        if not sales:
            return
        known = _existing(conn, "transactions", "transaction_id", list(sales))
        daily: dict[tuple[str, str], list[float]] = {}  # (product, day) → [baskets, units]
        shoppers: list[Sale] = []
        for transaction_id, item in sales.items():
            if transaction_id in known:
                continue
            sale: PosTransaction = item.event  # type: ignore[assignment]
            sale_id = conn.execute(
                "INSERT INTO transactions (transaction_id, register_id, customer_id, ts, total,"
                " item_count) VALUES (?, ?, ?, ?, ?, ?)",
                (transaction_id, item.device_id, sale.customer_id, item.ts, sale.total,
                 len(sale.items))).lastrowid
            conn.executemany(
                "INSERT INTO transaction_items (sale_id, line_no, product_id, quantity,"
                " unit_price, discount) VALUES (?, ?, ?, ?, ?, ?)",
                [(sale_id, n, line.product_id, line.quantity, line.unit_price, line.discount)
                 for n, line in enumerate(sale.items)])
            _count_daily(daily, item.ts[:10], sale)
            if sale.customer_id is not None:
                shoppers.append(Sale(sale.customer_id, sale.ts.timestamp(), sale.total,
                                     [(line.product_id, line.quantity) for line in sale.items]))
        conn.executemany(
            "INSERT INTO product_daily_sales (product_id, day, baskets, units)"
            " VALUES (?, ?, ?, ?) ON CONFLICT(product_id, day) DO UPDATE SET"
            " baskets = baskets + excluded.baskets, units = units + excluded.units",
            [(pid, day, int(b), u) for (pid, day), (b, u) in daily.items()])
        # In this transaction: a sale's effect on its shopper's features commits with it.
        self._features.apply(shoppers)


class ShelfState:
    """The latest reading per shelf (the history is in the event log)."""

    def apply(self, conn: sqlite3.Connection, events: Sequence[NewEvent]) -> None:
        # Readings can arrive out of order (redelivery, a gateway catching up): only a newer
        # one replaces the state.
        conn.executemany(
            "INSERT INTO shelf_state (shelf_id, product_id, quantity, weight_g, capacity, ts,"
            " event_id) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(shelf_id) DO UPDATE SET"
            " product_id=excluded.product_id, quantity=excluded.quantity,"
            " weight_g=excluded.weight_g, capacity=excluded.capacity, ts=excluded.ts,"
            " event_id=excluded.event_id WHERE excluded.ts >= shelf_state.ts",
            [(item.device_id, e.product_id, e.quantity, e.weight_g, e.capacity, item.ts,
              e.event_id) for item in events if isinstance(e := item.event, ShelfReading)])


class SensorTables:
    """Zone head counts, shopper presence and kiosk interactions, one row per event."""

    def apply(self, conn: sqlite3.Connection, events: Sequence[NewEvent]) -> None:
        zones, presence, interactions = [], [], []
        for item in events:
            e = item.event
            if isinstance(e, ZoneTraffic):
                zones.append((e.event_id, item.device_id, item.ts, e.people, e.avg_dwell_s))
            elif isinstance(e, Presence) and e.customer_id is not None:  # see consent.py
                presence.append((e.event_id, item.device_id, e.customer_id, e.zone_id, item.ts))
            elif isinstance(e, Interaction):
                interactions.append((e.event_id, item.device_id, e.customer_id, e.action,
                                     e.product_id, e.context, e.model_version, item.ts))
        conn.executemany("INSERT OR IGNORE INTO zone_traffic VALUES (?, ?, ?, ?, ?)", zones)
        conn.executemany("INSERT OR IGNORE INTO presence VALUES (?, ?, ?, ?, ?)", presence)
        conn.executemany("INSERT OR IGNORE INTO interactions VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                         interactions)


def build_projections(conn: sqlite3.Connection) -> list[Projection]:
    """The store's projections, in the order they run (the event log first)."""
    return [EventLog(), Sales(conn), ShelfState(), SensorTables()]


def new_event(event: Event, payload: bytes, device_id: str, received_at: int) -> NewEvent:
    return NewEvent(event, payload, device_id, format_ts(event.ts), received_at)


def _body(payload: bytes) -> str:
    """The payload without its envelope (kept in the event log's columns), compact."""
    fields = orjson.loads(payload)
    for name in ENVELOPE_FIELDS:
        fields.pop(name, None)
    return orjson.dumps(fields).decode()


def _first_of_each_transaction(items: Iterable[NewEvent]) -> dict[str, NewEvent]:
    first: dict[str, NewEvent] = {}
    for item in items:
        first.setdefault(item.event.transaction_id, item)  # type: ignore[union-attr]
    return first


def _existing(conn: sqlite3.Connection, table: str, column: str, keys: list[str]) -> set[str]:
    found: set[str] = set()
    for start in range(0, len(keys), IN_CLAUSE_CHUNK):
        chunk = keys[start:start + IN_CLAUSE_CHUNK]
        marks = ",".join("?" * len(chunk))
        found.update(key for (key,) in conn.execute(
            f"SELECT {column} FROM {table} WHERE {column} IN ({marks})", chunk))
    return found


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
