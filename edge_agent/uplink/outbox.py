"""The event log as the uplink's outbox: committed events after a durable cursor.

No second copy of any event: the `events` table is the outbox (`seq` is the commit order).
`uplink_cursor.seq` is the last event IoT Core acknowledged (PUBACK) and `lake_seq` the
lake's watermark (edge_agent/uplink/confirmations.py). A batch is cut the same way from the
same cursor every time (a fixed event and byte budget, cut again in proportion until the
compressed payload fits IoT Core's 128 KB), so a batch sent again after a crash carries the
same batch id and lands on the same lake object.

Consent is read when a batch is cut, not when the event arrived: a shopper who withdrew
consent (or was erased) goes up anonymous from that moment, backlog included.
"""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass
from typing import Any

import orjson

from cloud_sync.link.batch import MAX_PAYLOAD_BYTES, batch_id_for, encode_batch
from cloud_sync.link.privacy import pseudonymize, uplink_record
from models.events import format_ts, utc_now

# Events per batch at most, and their stored JSON bytes at most. A busy store's mix (mostly
# shelf readings) goes up at ~205 B of JSON and ~43 B compressed an event
# (benchmarks/uplink.py): 2,500 of them fill ~105 KB of the 128 KB in one go. A batch that
# comes out too big is cut again in proportion, so each batch is encoded about once.
MAX_EVENTS_PER_BATCH = 2500
MAX_RAW_BYTES_PER_BATCH = 640 * 1024
# Aim this far under the limit when cutting again (sizes are not quite proportional).
RECUT_MARGIN = 0.9
# Room left under the payload limit for the MQTT publish's own header (topic, properties).
PAYLOAD_HEADROOM = 1024
SHOPPER_FIELD = "customer_id"


@dataclass(frozen=True)
class OutgoingBatch:
    batch_id: str
    first_seq: int
    last_seq: int
    events: int
    payload: bytes


@dataclass(frozen=True)
class Backlog:
    events: int  # committed, not yet confirmed by the lake
    oldest_received_at: int | None  # epoch seconds of the oldest of them


class Outbox:
    def __init__(self, conn: sqlite3.Connection, store_id: str, pseudonym_key: bytes, *,
                 lock: threading.Lock | None = None) -> None:
        # One connection shared by the publisher's thread and the metrics' thread.
        self._lock = lock or threading.Lock()
        self._conn = conn
        self._store_id = store_id
        self._key = pseudonym_key
        self.outbox_id: str = conn.execute(
            "SELECT outbox_id FROM uplink_cursor WHERE id = 1").fetchone()[0]

    def cursor(self) -> int:
        with self._lock:
            return self._conn.execute("SELECT seq FROM uplink_cursor WHERE id = 1").fetchone()[0]

    def acknowledge(self, seq: int) -> None:
        """The cloud has every event up to `seq`; the cursor never moves back."""
        with self._lock, self._conn:
            self._conn.execute("UPDATE uplink_cursor SET seq = ?, updated_at = ?"
                               " WHERE id = 1 AND seq < ?", (seq, format_ts(utc_now()), seq))

    def lake_watermark(self) -> int:
        with self._lock:
            return self._conn.execute(
                "SELECT lake_seq FROM uplink_cursor WHERE id = 1").fetchone()[0]

    def confirm_lake(self, seq: int) -> None:
        """The lake has written every batch up to `seq`: retention may now delete them."""
        with self._lock, self._conn:
            self._conn.execute("UPDATE uplink_cursor SET lake_seq = ? WHERE id = 1"
                               " AND lake_seq < ?", (seq, seq))

    def rewind_to_lake(self) -> int:
        """Send again what the lake has not confirmed: the cursor back to the watermark."""
        with self._lock, self._conn:
            self._conn.execute("UPDATE uplink_cursor SET seq = lake_seq WHERE id = 1")
            return self._conn.execute(
                "SELECT seq FROM uplink_cursor WHERE id = 1").fetchone()[0]

    def backlog(self) -> Backlog:
        """What the store still holds for the cloud: everything after the lake's watermark
        (sent or not; the lake has not confirmed it)."""
        cursor = self.lake_watermark()
        with self._lock:
            row = self._conn.execute(
                "SELECT (SELECT max(seq) FROM events), (SELECT received_at FROM events"
                " WHERE seq > ? ORDER BY seq LIMIT 1)", (cursor,)).fetchone()
        newest, oldest = row
        return Backlog(max(0, (newest or 0) - cursor) if oldest is not None else 0, oldest)

    def next_batch(self, after_seq: int) -> OutgoingBatch | None:
        with self._lock:
            rows = self._conn.execute(
                "SELECT seq, event_id, type, device_id, ts, body FROM events WHERE seq > ?"
                " ORDER BY seq LIMIT ?", (after_seq, MAX_EVENTS_PER_BATCH)).fetchall()
        if not rows:
            return None
        taken, raw = 0, 0
        for taken, row in enumerate(rows, start=1):  # noqa: B007 - taken is the count
            raw += len(row[5])
            if raw >= MAX_RAW_BYTES_PER_BATCH:
                break
        events = self._records(rows[:taken])
        while True:
            first, last = rows[0][0], rows[taken - 1][0]
            batch_id = batch_id_for(self.outbox_id, first, last)
            payload = encode_batch(self._store_id, batch_id, events[:taken], (first, last))
            limit = MAX_PAYLOAD_BYTES - PAYLOAD_HEADROOM
            if len(payload) <= limit or taken == 1:
                return OutgoingBatch(batch_id, first, last, taken, payload)
            taken = max(1, min(taken - 1, int(taken * limit / len(payload) * RECUT_MARGIN)))

    def _records(self, rows: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
        events = []
        for _seq, event_id, kind, device_id, ts, body in rows:
            event = orjson.loads(body)
            event.update(event_id=event_id, type=kind, device_id=device_id, ts=ts)
            events.append(event)
        consenting = self._consenting({e[SHOPPER_FIELD] for e in events
                                       if e.get(SHOPPER_FIELD)})
        pseudonyms = {c: pseudonymize(self._key, c) for c in consenting}
        return [uplink_record(e, pseudonym=pseudonyms.get(e.get(SHOPPER_FIELD) or ""))
                for e in events]

    def _consenting(self, shoppers: set[str]) -> set[str]:
        if not shoppers:
            return set()
        ids = sorted(shoppers)
        found: set[str] = set()
        with self._lock:
            for start in range(0, len(ids), 500):
                chunk = ids[start:start + 500]
                found.update(row[0] for row in self._conn.execute(
                    "SELECT customer_id FROM customers WHERE consent_personalization = 1"
                    f" AND customer_id IN ({','.join('?' * len(chunk))})", chunk))
        return found
