"""One insights message from the cloud into SQLite, in one transaction.

Each record is checked on its own (partial failure by item): a malformed one is dead-lettered
with the reason and the others are stored; a message that is not an insights message at all
is dead-lettered whole. Records name shoppers by pseudonym: the store computes the pseudonym
of each of its customers who consented to staff assistance (it holds the chain's key) and
keeps only the records of those; the others are dropped and counted, never stored. A
withdrawal of that consent deletes the shopper's analyses at once (the master-data consent
path, `edge_agent.masterdata.apply`); each message also sweeps any left by other means.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import orjson
from pydantic import ValidationError

from cloud_sync.analysis.downlink import (
    INSIGHTS_KIND,
    MAX_RECORDS_PER_MESSAGE,
    InsightRecord,
)
from cloud_sync.link.batch import MAX_PAYLOAD_BYTES
from cloud_sync.link.masterdata import MasterDataMessageError, decode_message
from cloud_sync.link.privacy import pseudonymize
from edge_agent.insights.store import drop_unconsented, trim_history
from models.events import format_ts, utc_now

# Reasons are for an operator reading the dead letters: a line, not the record.
MAX_REASON_CHARS = 500
# Record errors reported back to the cloud per message: enough to fix the producer.
MAX_REPORTED_ERRORS = 20


@dataclass
class InsightsOutcome:
    status: str  # "applied" (records checked one by one) or "refused" (the whole message)
    batch_id: str | None = None
    version: int | None = None
    stored: int = 0  # new analyses kept
    already: int = 0  # analyses this store already had (a message sent again)
    skipped: int = 0  # not a shopper of this store with staff-assist consent: dropped
    dead_lettered: int = 0  # malformed records (or 1: the whole message)
    reason: str | None = None
    errors: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v not in (None, [])}


def apply_insights(conn: sqlite3.Connection, payload: bytes, *, topic: str,
                   pseudonym_key: bytes, max_raw_bytes: int,
                   now: datetime | None = None) -> InsightsOutcome:
    """Store what the message holds; never raises for the message's content (only for the
    database, which the caller retries)."""
    received_at = format_ts(now or utc_now())
    try:
        message = _decode(payload)
    except MasterDataMessageError as exc:
        reason = str(exc)
        _in_transaction(conn, lambda: _dead_letter(conn, topic, payload, reason, received_at,
                                                   max_raw_bytes))
        return InsightsOutcome("refused", reason=reason, dead_lettered=1)
    outcome = InsightsOutcome("applied", batch_id=message.batch_id, version=message.version)
    valid: list[InsightRecord] = []
    rejected: list[tuple[str, bytes]] = []
    for row, values in message.rows:
        try:
            valid.append(InsightRecord.model_validate(values))
        except ValidationError as exc:
            reason = f"batch {message.batch_id} record {row}: {_describe(exc)}"
            rejected.append((reason, orjson.dumps(values)))
    outcome.dead_lettered = len(rejected)
    outcome.errors = [reason for reason, _ in rejected[:MAX_REPORTED_ERRORS]]

    def write() -> None:
        customers = _staff_assist_pseudonyms(conn, pseudonym_key) if valid else {}
        touched = set()
        for record in valid:
            customer = customers.get(record.shopper)
            if customer is None:
                outcome.skipped += 1
                continue
            cursor = conn.execute(
                "INSERT INTO shopper_insights (analysis_id, customer_id, producer, model_id,"
                " fallback_reason, created_at, received_at, batch_id, version, analysis)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(analysis_id) DO NOTHING",
                (record.analysis_id, customer, record.producer, record.model_id,
                 record.fallback_reason, format_ts(record.created_at), received_at,
                 message.batch_id, message.version, record.analysis.model_dump_json()))
            if cursor.rowcount:
                outcome.stored += 1
                touched.add(customer)
            else:
                outcome.already += 1
        trim_history(conn, touched)
        drop_unconsented(conn)
        for reason, raw in rejected:
            _dead_letter(conn, topic, raw, reason, received_at, max_raw_bytes)

    _in_transaction(conn, write)
    return outcome


def _decode(payload: bytes) -> Any:
    # IoT Core delivers nothing larger; anything larger is not from the cloud.
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise MasterDataMessageError(f"oversized payload: {len(payload)} bytes >"
                                     f" {MAX_PAYLOAD_BYTES}")
    message = decode_message(payload)
    if message.kind != INSIGHTS_KIND:
        raise MasterDataMessageError(f"kind {message.kind!r} is not {INSIGHTS_KIND!r}")
    if len(message.rows) > MAX_RECORDS_PER_MESSAGE:
        raise MasterDataMessageError(f"{len(message.rows)} records, more than"
                                     f" {MAX_RECORDS_PER_MESSAGE}")
    return message


def _describe(exc: ValidationError) -> str:
    """The fields and what is wrong with them, never the values (they may be anything)."""
    parts = [f"{'.'.join(str(p) for p in error['loc']) or 'record'}: {error['msg']}"
             for error in exc.errors(include_input=False, include_url=False)[:5]]
    return "; ".join(parts)


def _staff_assist_pseudonyms(conn: sqlite3.Connection, key: bytes) -> dict[str, str]:
    """Pseudonym → customer id, for the customers staff may see analyses of. One HMAC per
    such customer (about a microsecond each): cheaper than keeping a mapping in sync."""
    rows = conn.execute("SELECT customer_id FROM customers WHERE consent_staff_assist = 1")
    return {pseudonymize(key, customer): customer for (customer,) in rows}


def _dead_letter(conn: sqlite3.Connection, topic: str, raw: bytes, reason: str,
                 received_at: str, max_raw_bytes: int) -> None:
    # The same table and repeat counting as ingestion's dead letters (a message sent again
    # counts as a repeat of its first row).
    digest = hashlib.blake2b(topic.encode() + b"\0" + raw, digest_size=16).digest()
    conn.execute(
        "INSERT INTO dead_letters (received_at, topic, reason, raw, raw_size, event_id,"
        " digest, repeats) VALUES (?, ?, ?, ?, ?, NULL, ?, 0) ON CONFLICT(digest) DO UPDATE"
        " SET repeats = repeats + 1, last_at = excluded.received_at",
        (received_at, topic, reason[:MAX_REASON_CHARS], raw[:max_raw_bytes], len(raw), digest))


def _in_transaction(conn: sqlite3.Connection, work: Callable[[], None]) -> None:
    conn.execute("BEGIN IMMEDIATE")
    try:
        work()
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
