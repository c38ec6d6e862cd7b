"""Reading and updating shopper features in SQLite.

The ingestion writer applies each newly stored sale inside the same transaction as the sale
itself, so a shopper's features count every sale exactly once, whatever crashes or
redeliveries happen. Requests read one row per shopper: no history is rescanned.
"""

from __future__ import annotations

import logging
import sqlite3
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import groupby
from operator import itemgetter

from edge_agent.features.shopper import STATE_VERSION, SaleLine, ShopperFeatures
from models.events import TS_FORMAT, format_ts, utc_now

logger = logging.getLogger(__name__)
STATE_VERSION_KEY = "shopper_features_version"
# Product → category lookups chunked under SQLite's bound-parameter limit.
_LOOKUP_CHUNK = 500


@dataclass(frozen=True)
class Sale:
    customer_id: str
    ts: float  # epoch seconds
    total: float
    lines: Sequence[tuple[str, float]]  # (product id, quantity)


def load_features(conn: sqlite3.Connection, customer_id: str) -> ShopperFeatures | None:
    stamped = load_stamped_features(conn, customer_id)
    return stamped[0] if stamped is not None else None


def load_stamped_features(conn: sqlite3.Connection, customer_id: str
                          ) -> tuple[ShopperFeatures, str] | None:
    """The shopper's features and a stamp that changes whenever a sale is applied to them
    (what lets serving reuse a model's answer for this shopper until they buy again)."""
    row = conn.execute("SELECT state, sales, updated_at FROM shopper_features"
                       " WHERE customer_id = ?", (customer_id,)).fetchone()
    return (ShopperFeatures.from_blob(row[0]), f"{row[1]}@{row[2]}") if row else None


def smoke_shoppers(conn: sqlite3.Connection, limit: int) -> list[ShopperFeatures]:
    """Inputs for a new bundle's smoke test: the shoppers seen most recently and those with
    the longest histories (the largest candidate sets this store produces)."""
    rows = conn.execute(
        "SELECT state FROM (SELECT state FROM shopper_features ORDER BY updated_at DESC"
        " LIMIT ?) UNION ALL SELECT state FROM (SELECT state FROM shopper_features"
        " ORDER BY sales DESC LIMIT ?)", (limit, limit)).fetchall()
    return [ShopperFeatures.from_blob(row[0]) for row in rows]


def consenting(conn: sqlite3.Connection, customer_ids: Iterable[str]) -> set[str]:
    """Those of `customer_ids` who consented to personalization."""
    ids = sorted(set(customer_ids))
    found: set[str] = set()
    for start in range(0, len(ids), _LOOKUP_CHUNK):
        chunk = ids[start:start + _LOOKUP_CHUNK]
        found.update(row[0] for row in conn.execute(
            "SELECT customer_id FROM customers WHERE consent_personalization = 1"
            f" AND customer_id IN ({','.join('?' * len(chunk))})", chunk))
    return found


class FeatureUpdater:
    """Applies sales to shopper features through one connection (the writer's). Only
    shoppers who consented to personalization have features: a shopper who consents later
    gets theirs from the sales kept (`sync_with_consent`)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        # Categories of products seen in the catalog; catalog changes are rare and an
        # unknown product is looked up again next time (the catalog can lag the tills).
        self._categories: dict[str, str] = {}

    def apply(self, sales: Iterable[Sale]) -> int:
        """Apply `sales` (inside the caller's transaction); returns shoppers updated."""
        by_customer: dict[str, list[Sale]] = defaultdict(list)
        for sale in sales:
            by_customer[sale.customer_id].append(sale)
        allowed = consenting(self._conn, by_customer)
        by_customer = {who: group for who, group in by_customer.items() if who in allowed}
        if not by_customer:
            return 0
        self._learn_categories({pid for group in by_customer.values()
                                for sale in group for pid, _ in sale.lines})
        now = format_ts(utc_now())
        rows = []
        for customer_id, group in by_customer.items():
            features = load_features(self._conn, customer_id) or ShopperFeatures()
            for sale in sorted(group, key=lambda s: s.ts):
                features.apply_sale(sale.ts, [SaleLine(pid, self._categories.get(pid), qty)
                                              for pid, qty in sale.lines], sale.total)
            rows.append((customer_id, features.to_blob(), len(group), now))
        self._conn.executemany(
            "INSERT INTO shopper_features (customer_id, state, sales, updated_at)"
            " VALUES (?, ?, ?, ?) ON CONFLICT(customer_id) DO UPDATE SET"
            " state = excluded.state, sales = shopper_features.sales + excluded.sales,"
            " updated_at = excluded.updated_at", rows)
        return len(rows)

    def _learn_categories(self, product_ids: set[str]) -> None:
        unknown = [pid for pid in product_ids if pid not in self._categories]
        for start in range(0, len(unknown), _LOOKUP_CHUNK):
            chunk = unknown[start:start + _LOOKUP_CHUNK]
            marks = ",".join("?" * len(chunk))
            for pid, category in self._conn.execute(
                    f"SELECT product_id, category FROM products WHERE product_id IN ({marks})",
                    chunk):
                self._categories[pid] = category


# Shoppers rebuilt per transaction: a year of a busy store's sales is millions of lines, and
# neither memory nor the write lock should be held for all of it at once.
REBUILD_BATCH_SHOPPERS = 500


def rebuild_features(conn: sqlite3.Connection) -> int:
    """Recompute every shopper's features from the stored sales (for a database that
    predates the features table, after a catalog correction, or when the feature code
    changed), in batches of shoppers, each its own transaction. Returns the number of sales
    replayed. Interrupted, it is simply run again: the version mark is set only after it."""
    updater = FeatureUpdater(conn)
    conn.execute("DELETE FROM shopper_features")
    replayed, last = 0, ""
    while True:
        shoppers = [row[0] for row in conn.execute(
            "SELECT DISTINCT customer_id FROM transactions WHERE customer_id > ?"
            " ORDER BY customer_id LIMIT ?", (last, REBUILD_BATCH_SHOPPERS))]
        if not shoppers:
            return replayed
        last = shoppers[-1]
        sales = _sales_of(conn, shoppers)
        conn.execute("BEGIN IMMEDIATE")
        try:
            updater.apply(sales)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        replayed += len(sales)


def _sales_of(conn: sqlite3.Connection, shoppers: list[str]) -> list[Sale]:
    """The stored sales of `shoppers`, oldest first per shopper."""
    sales = []
    for start in range(0, len(shoppers), _LOOKUP_CHUNK):
        chunk = shoppers[start:start + _LOOKUP_CHUNK]
        cursor = conn.execute(
            "SELECT t.sale_id, t.customer_id, t.ts, t.total, i.product_id, i.quantity"
            " FROM transactions t JOIN transaction_items i USING (sale_id)"
            f" WHERE t.customer_id IN ({','.join('?' * len(chunk))})"
            " ORDER BY t.customer_id, t.ts, t.sale_id, i.line_no", chunk)
        for _, group in groupby(cursor, key=itemgetter(0)):
            rows = list(group)
            _, customer_id, ts, total, _, _ = rows[0]
            sales.append(Sale(customer_id, epoch_seconds(ts), total,
                              [(r[4], r[5]) for r in rows]))
    return sales


def sync_with_consent(conn: sqlite3.Connection, customer_ids: Iterable[str]) -> None:
    """After consent changed (inside the caller's transaction): a shopper without consent
    has no features; one who has it and none yet gets them from the sales kept."""
    ids = sorted(set(customer_ids))
    allowed = consenting(conn, ids)
    withdrawn = [who for who in ids if who not in allowed]
    for start in range(0, len(withdrawn), _LOOKUP_CHUNK):
        chunk = withdrawn[start:start + _LOOKUP_CHUNK]
        conn.execute("DELETE FROM shopper_features WHERE customer_id IN"
                     f" ({','.join('?' * len(chunk))})", chunk)
    have: set[str] = set()
    wanted = sorted(allowed)
    for start in range(0, len(wanted), _LOOKUP_CHUNK):
        chunk = wanted[start:start + _LOOKUP_CHUNK]
        have.update(row[0] for row in conn.execute(
            "SELECT customer_id FROM shopper_features WHERE customer_id IN"
            f" ({','.join('?' * len(chunk))})", chunk))
    missing = sorted(allowed - have)
    if missing:
        FeatureUpdater(conn).apply(_sales_of(conn, missing))


def ensure_features_current(conn: sqlite3.Connection) -> bool:
    """Rebuild every shopper's features if they were written by other feature code (an
    upgrade changed a feature schema). Returns whether a rebuild ran. Call before ingesting."""
    row = conn.execute("SELECT value FROM agent_meta WHERE key = ?",
                       (STATE_VERSION_KEY,)).fetchone()
    if row is not None and row[0] == STATE_VERSION:
        return False
    has_state = conn.execute("SELECT 1 FROM shopper_features LIMIT 1").fetchone() is not None
    has_sales = conn.execute("SELECT 1 FROM transactions LIMIT 1").fetchone() is not None
    if has_state or has_sales:
        logger.warning("shopper features are from %s, this code computes %s: rebuilding",
                       row[0] if row else "an older agent", STATE_VERSION)
        replayed = rebuild_features(conn)
        logger.info("rebuilt shopper features from %d sales", replayed)
    conn.execute("INSERT INTO agent_meta (key, value) VALUES (?, ?) ON CONFLICT(key)"
                 " DO UPDATE SET value = excluded.value", (STATE_VERSION_KEY, STATE_VERSION))
    return has_state or has_sales


def epoch_seconds(ts: str) -> float:
    """Epoch seconds of a stored timestamp (format_ts text)."""
    return datetime.strptime(ts, TS_FORMAT).replace(tzinfo=UTC).timestamp()
