"""Trending now: products of the catalog selling faster in the last hours than their usual
pace, bought by enough different shoppers to mean something."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime, timedelta

from models.events import format_ts

# The usual pace is measured over this many whole days before the window (from the daily
# totals the writer keeps, so it costs a few rows per product, not weeks of line items).
BASELINE_DAYS = 7
# A product never sold in the baseline gets this many baskets as a prior, so one lucky sale
# of a rarity does not outrank the soup everybody is buying on a cold day.
BASELINE_PRIOR_BASKETS = 2.0
# Nothing trends on fewer distinct buyers than this (anonymous sales count one buyer each):
# one shopper's six baskets, or one rogue device's, are not what the store is buying. And
# only products of the store's catalog trend: an id no till should send is never shown.
MIN_TRENDING_BUYERS = 3


@dataclass(frozen=True)
class TrendingProduct:
    product_id: str
    name: str | None
    category: str | None
    baskets: int
    lift: float  # baskets in the window / the usual baskets for a window that long


def trending_products(conn: sqlite3.Connection, now: datetime, window_hours: float,
                      limit: int) -> list[TrendingProduct]:
    window_start = now - timedelta(hours=window_hours)
    baseline_start = window_start - timedelta(days=BASELINE_DAYS)
    windows_in_baseline = BASELINE_DAYS * 24 / window_hours
    rows = conn.execute(
        """
        WITH recent AS (
            SELECT ti.product_id, COUNT(DISTINCT t.transaction_id) AS baskets
            FROM transactions t JOIN transaction_items ti USING (sale_id)
            JOIN products p USING (product_id)
            WHERE t.ts >= :window_start AND t.ts <= :now
            GROUP BY ti.product_id
            HAVING COUNT(DISTINCT COALESCE(t.customer_id, 'sale:' || t.sale_id)) >= :buyers
        ), usual AS (
            SELECT d.product_id, SUM(d.baskets) AS baskets
            FROM product_daily_sales d JOIN recent USING (product_id)
            WHERE d.day >= :baseline_start AND d.day < :window_start_day
            GROUP BY d.product_id
        )
        SELECT r.product_id, p.name, p.category, r.baskets,
               r.baskets / ((COALESCE(u.baskets, 0) + :prior) / :windows) AS lift
        FROM recent r LEFT JOIN usual u USING (product_id)
        JOIN products p USING (product_id)
        ORDER BY lift DESC, r.baskets DESC, r.product_id
        LIMIT :limit
        """,
        {"window_start": format_ts(window_start), "now": format_ts(now),
         "baseline_start": format_ts(baseline_start)[:10],
         "window_start_day": format_ts(window_start)[:10], "windows": windows_in_baseline,
         "prior": BASELINE_PRIOR_BASKETS, "limit": limit,
         "buyers": MIN_TRENDING_BUYERS})
    return [TrendingProduct(r["product_id"], r["name"], r["category"], r["baskets"],
                            round(r["lift"], 3)) for r in rows]
