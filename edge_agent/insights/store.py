"""The analyses a store holds for its shoppers, read newest first for staff.

Only the shopper's internal customer id keys the rows; neither it nor the pseudonym ever
appears in what is read out.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from pydantic import ValidationError

from cloud_sync.analysis.schema import ShopperAnalysis

logger = logging.getLogger(__name__)

# Analyses kept per shopper: a nightly run re-analyses a shopper only when their history
# changed materially, so 100 is months to years of history; older ones go on arrival.
HISTORY_KEPT = 100
# What the history endpoint answers at most at once: a handheld screen's worth and then some.
HISTORY_MAX = 50


@dataclass(frozen=True)
class StoredInsight:
    producer: str
    model_id: str | None
    fallback_reason: str | None
    created_at: datetime
    received_at: datetime
    analysis: ShopperAnalysis


def insights_of(conn: sqlite3.Connection, customer_id: str,
                limit: int = 1) -> list[StoredInsight]:
    """The shopper's analyses, newest first, at most `limit` (and HISTORY_MAX)."""
    rows = conn.execute(
        "SELECT producer, model_id, fallback_reason, created_at, received_at, analysis"
        " FROM shopper_insights WHERE customer_id = ? ORDER BY created_at DESC, id DESC"
        " LIMIT ?", (customer_id, max(1, min(limit, HISTORY_MAX)))).fetchall()
    found = []
    for producer, model_id, reason, created_at, received_at, analysis in rows:
        try:
            parsed = ShopperAnalysis.model_validate_json(analysis)
        except ValidationError:
            # A row stored under an older schema that this version no longer reads: skip it
            # rather than fail the whole answer.
            logger.warning("skipped an analysis this version cannot read")
            continue
        found.append(StoredInsight(producer, model_id, reason, _ts(created_at),
                                   _ts(received_at), parsed))
    return found


def latest_insight(conn: sqlite3.Connection, customer_id: str) -> StoredInsight | None:
    found = insights_of(conn, customer_id, 1)
    return found[0] if found else None


def trim_history(conn: sqlite3.Connection, customer_ids: Iterable[str]) -> None:
    """Drop each shopper's analyses beyond the newest HISTORY_KEPT (inside the caller's
    transaction)."""
    conn.executemany(
        "DELETE FROM shopper_insights WHERE customer_id = ? AND id NOT IN (SELECT id FROM"
        " shopper_insights WHERE customer_id = ? ORDER BY created_at DESC, id DESC LIMIT ?)",
        [(customer, customer, HISTORY_KEPT) for customer in customer_ids])


def drop_unconsented(conn: sqlite3.Connection, customer_ids: Iterable[str] | None = None
                     ) -> int:
    """Delete the analyses of shoppers who no longer consent to staff assistance (or are
    gone): of these customers, or of everyone (None). They are never served, and must not be
    kept (inside the caller's transaction)."""
    unconsented = ("customer_id NOT IN"
                   " (SELECT customer_id FROM customers WHERE consent_staff_assist = 1)")
    if customer_ids is None:
        return conn.execute(f"DELETE FROM shopper_insights WHERE {unconsented}").rowcount
    return sum(conn.execute(
        f"DELETE FROM shopper_insights WHERE customer_id = ? AND {unconsented}",
        (customer,)).rowcount for customer in set(customer_ids))


def _ts(value: str) -> datetime:
    return datetime.fromisoformat(value)
