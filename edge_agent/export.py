"""The store's sales as a basket CSV in the models' generic format (`models/datasets/csv.py`):
what the cloud trains on, and what a store can train on by itself (demo, benchmarks)."""

from __future__ import annotations

import csv
import sqlite3
from pathlib import Path

from edge_agent.features.store import epoch_seconds

HEADER = ("user_id", "basket_id", "timestamp", "item_id", "quantity", "price", "category")


def export_baskets(conn: sqlite3.Connection, out: Path) -> int:
    """Write the sales of every shopper who consented to personalization to `out` (a
    shopper's history trains models only with their consent, as it leaves the store only
    with it); returns the number of lines."""
    out.parent.mkdir(parents=True, exist_ok=True)
    rows = conn.execute(
        "SELECT t.customer_id, t.transaction_id, t.ts, i.product_id, i.quantity,"
        " i.quantity * i.unit_price - i.discount, p.category"
        " FROM transactions t JOIN transaction_items i USING (sale_id)"
        " JOIN customers c ON c.customer_id = t.customer_id AND c.consent_personalization = 1"
        " LEFT JOIN products p USING (product_id)"
        " ORDER BY t.customer_id, t.ts, i.line_no")
    written = 0
    with out.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        for customer, basket, ts, product, quantity, paid, category in rows:
            writer.writerow((customer, basket, int(epoch_seconds(ts)), product, quantity,
                             round(paid, 2), category or ""))
            written += 1
    return written
