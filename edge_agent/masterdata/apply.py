"""Applying validated master-data records: one transaction per batch (a file, a downlink
message), idempotent by batch id, and per record never older over newer (`md_version`).

Erasure removes a shopper's personal rows — the customer record, features, presence and
interactions — and keeps their sales as anonymous ones; the shopper's id is also taken out of
the event log (the uplink's outbox) and the dead letters, in short batches after the main
transaction so ingestion never waits long.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from edge_agent.features.store import sync_with_consent
from edge_agent.insights.store import drop_unconsented
from models.events import format_ts, utc_now
from models.masterdata.records import (
    ConsentRecord,
    CustomerRecord,
    ErasureRecord,
    MasterDataError,
    ProductRecord,
    RowError,
    validate,
)

# SQLite's bound-parameter limit is 32,766 in current builds; stay well under it.
CHUNK = 500
# Event-log rows scanned per transaction when an erasure scrubs the outbox: a few
# milliseconds each, so the ingestion writer (busy timeout 5 s) barely waits.
SCRUB_BATCH_ROWS = 20_000
EVENT_TYPES_WITH_SHOPPER = ("pos.transaction", "presence", "interaction")


@dataclass(frozen=True)
class ApplyResult:
    kind: str
    batch_id: str
    version: int
    applied: int  # records written
    stale: int  # records older than what the store holds: left alone
    already_applied: bool = False  # the same batch came before: nothing done


def apply_records(conn: sqlite3.Connection, kind: str, rows: Sequence[tuple[int, dict[str, Any]]],
                  *, version: int, batch_id: str) -> ApplyResult:
    """Validate every row (MasterDataError naming the bad ones, nothing changed), then apply
    them in one transaction."""
    records = validate(kind, list(rows))
    conn.execute("BEGIN IMMEDIATE")
    try:
        if conn.execute("SELECT 1 FROM master_data_batches WHERE batch_id = ?",
                        (batch_id,)).fetchone():
            conn.execute("COMMIT")
            return ApplyResult(kind, batch_id, version, 0, 0, already_applied=True)
        applier = _APPLIERS[kind]
        applied = applier(conn, records, version, [row for row, _ in rows])
        if kind in ("customers", "consent"):  # features and analyses exist only with consent
            changed = [r.customer_id for r in records]  # type: ignore[attr-defined]
            sync_with_consent(conn, changed)
            # A staff-assist withdrawal takes the chain's analyses of the shopper at once.
            drop_unconsented(conn, changed)
        conn.execute("INSERT INTO master_data_batches (batch_id, kind, version, records,"
                     " applied_at) VALUES (?, ?, ?, ?, ?)",
                     (batch_id, kind, version, len(records), format_ts(utc_now())))
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    if kind == "erasure":
        scrub_event_log(conn, [r.customer_id for r in records])  # type: ignore[attr-defined]
    return ApplyResult(kind, batch_id, version, applied, len(records) - applied)


def _versions(conn: sqlite3.Connection, table: str, key: str, ids: list[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start:start + CHUNK]
        marks = ",".join("?" * len(chunk))
        found.update(conn.execute(
            f"SELECT {key}, md_version FROM {table} WHERE {key} IN ({marks})", chunk))
    return found


def _apply_catalog(conn: sqlite3.Connection, records: Sequence[Any], version: int,
                   _rows: list[int]) -> int:
    products: Sequence[ProductRecord] = records
    held = _versions(conn, "products", "product_id", [p.product_id for p in products])
    fresh = [p for p in products if held.get(p.product_id, -1) <= version]
    conn.executemany(
        "INSERT INTO products (product_id, name, brand, department, category, price, size,"
        " temperature_zone, allergens, diets, active, md_version) VALUES"
        " (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(product_id) DO UPDATE SET"
        " name=excluded.name, brand=excluded.brand, department=excluded.department,"
        " category=excluded.category, price=excluded.price, size=excluded.size,"
        " temperature_zone=excluded.temperature_zone, allergens=excluded.allergens,"
        " diets=excluded.diets, active=excluded.active, md_version=excluded.md_version",
        [(p.product_id, p.name, p.brand, p.department, p.category, p.price, p.size,
          p.temperature_zone, json.dumps(p.allergens), json.dumps(p.diets), int(p.active),
          version) for p in fresh])
    return len(fresh)


def _apply_customers(conn: sqlite3.Connection, records: Sequence[Any], version: int,
                     rows: list[int]) -> int:
    customers: Sequence[CustomerRecord] = records
    _check_loyalty_numbers(conn, customers, rows)
    held = _versions(conn, "customers", "customer_id", [c.customer_id for c in customers])
    fresh = [c for c in customers if held.get(c.customer_id, -1) <= version]
    now = format_ts(utc_now())
    conn.executemany(
        "INSERT INTO customers (customer_id, loyalty_number, household_size,"
        " consent_personalization, consent_staff_assist, dietary_restrictions, allergens,"
        " created_at, md_version) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT(customer_id) DO UPDATE SET loyalty_number=excluded.loyalty_number,"
        " household_size=excluded.household_size,"
        " consent_personalization=excluded.consent_personalization,"
        " consent_staff_assist=excluded.consent_staff_assist,"
        " dietary_restrictions=excluded.dietary_restrictions, allergens=excluded.allergens,"
        " md_version=excluded.md_version",
        [(c.customer_id, c.loyalty_number, c.household_size, int(c.consent_personalization),
          int(c.consent_staff_assist), json.dumps(c.dietary_restrictions),
          json.dumps(c.allergens), now, version) for c in fresh])
    # A shopper imported again is no longer an erased one.
    conn.executemany("DELETE FROM erased_customers WHERE customer_id = ?",
                     [(c.customer_id,) for c in fresh])
    return len(fresh)


def _check_loyalty_numbers(conn: sqlite3.Connection, customers: Sequence[CustomerRecord],
                           rows: list[int]) -> None:
    errors, seen = [], {}
    numbers = [c.loyalty_number for c in customers if c.loyalty_number]
    owners: dict[str, str] = {}
    for start in range(0, len(numbers), CHUNK):
        chunk = numbers[start:start + CHUNK]
        marks = ",".join("?" * len(chunk))
        owners.update(conn.execute("SELECT loyalty_number, customer_id FROM customers"
                                   f" WHERE loyalty_number IN ({marks})", chunk))
    for row, customer in zip(rows, customers, strict=True):
        number = customer.loyalty_number
        if not number:
            continue
        if number in seen:
            errors.append(RowError(row, "loyalty_number", f"{number!r} is also on row"
                                                          f" {seen[number]}"))
        seen[number] = row
        owner = owners.get(number)
        if owner is not None and owner != customer.customer_id:
            errors.append(RowError(row, "loyalty_number",
                                   f"{number!r} belongs to customer {owner!r}"))
    if errors:
        raise MasterDataError(errors)


def _apply_consent(conn: sqlite3.Connection, records: Sequence[Any], version: int,
                   rows: list[int]) -> int:
    changes: Sequence[ConsentRecord] = records
    held = _versions(conn, "customers", "customer_id", [c.customer_id for c in changes])
    unknown = [RowError(row, "customer_id", f"no customer {c.customer_id!r} in this store")
               for row, c in zip(rows, changes, strict=True) if c.customer_id not in held]
    if unknown:
        raise MasterDataError(unknown)
    fresh = [c for c in changes if held[c.customer_id] <= version]
    conn.executemany(
        "UPDATE customers SET consent_personalization = COALESCE(?, consent_personalization),"
        " consent_staff_assist = COALESCE(?, consent_staff_assist), md_version = ?"
        " WHERE customer_id = ?",
        [(_int_or_none(c.consent_personalization), _int_or_none(c.consent_staff_assist),
          version, c.customer_id) for c in fresh])
    return len(fresh)


def _apply_erasure(conn: sqlite3.Connection, records: Sequence[Any], _version: int,
                   _rows: list[int]) -> int:
    erasures: Sequence[ErasureRecord] = records
    now = format_ts(utc_now())
    for erasure in erasures:
        shopper = (erasure.customer_id,)
        for statement in ("DELETE FROM customers WHERE customer_id = ?",
                          "DELETE FROM shopper_features WHERE customer_id = ?",
                          "DELETE FROM presence WHERE customer_id = ?",
                          "DELETE FROM interactions WHERE customer_id = ?",
                          # The chain's analyses of them, sent down by the cloud.
                          "DELETE FROM shopper_insights WHERE customer_id = ?",
                          # Their sales still count for the store, as anonymous baskets.
                          "UPDATE transactions SET customer_id = NULL WHERE customer_id = ?"):
            conn.execute(statement, shopper)
        conn.execute("INSERT INTO erased_customers (customer_id, erased_at) VALUES (?, ?)"
                     " ON CONFLICT(customer_id) DO UPDATE SET erased_at = excluded.erased_at",
                     (erasure.customer_id, now))
    return len(erasures)


def scrub_event_log(conn: sqlite3.Connection, customer_ids: Sequence[str]) -> int:
    """Take the shoppers' ids out of the event log and the dead letters, in short
    transactions. Returns the event rows changed."""
    if not customer_ids:
        return 0
    marks = ",".join("?" * len(customer_ids))
    types = ",".join("?" * len(EVENT_TYPES_WITH_SHOPPER))
    changed = 0
    last = (conn.execute("SELECT max(seq) FROM events").fetchone()[0] or 0)
    for start in range(0, last + 1, SCRUB_BATCH_ROWS):
        conn.execute("BEGIN IMMEDIATE")
        try:
            cursor = conn.execute(
                "UPDATE events SET body = json_set(body, '$.customer_id', NULL)"
                f" WHERE seq >= ? AND seq < ? AND type IN ({types})"
                f" AND json_extract(body, '$.customer_id') IN ({marks})",
                (start, start + SCRUB_BATCH_ROWS, *EVENT_TYPES_WITH_SHOPPER, *customer_ids))
            changed += cursor.rowcount
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
    conn.execute("BEGIN IMMEDIATE")
    try:
        for customer_id in customer_ids:
            conn.execute("DELETE FROM dead_letters WHERE instr(raw, ?) > 0",
                          (customer_id.encode(),))
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return changed


def _int_or_none(value: bool | None) -> int | None:
    return None if value is None else int(value)


_APPLIERS = {"catalog": _apply_catalog, "customers": _apply_customers,
             "consent": _apply_consent, "erasure": _apply_erasure}
