"""Restock alerts from the latest shelf readings."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Literal

Severity = Literal["empty", "low"]


@dataclass(frozen=True)
class RestockAlert:
    shelf_id: str
    product_id: str
    name: str | None
    category: str | None
    level: float  # units, or grams for a weighing shelf
    capacity: int  # in the same unit as level
    fill_ratio: float
    severity: Severity
    since: str  # time of the reading


def restock_alerts(conn: sqlite3.Connection, below_fill_ratio: float,
                   limit: int) -> list[RestockAlert]:
    """Shelves at or below `below_fill_ratio` of capacity, emptiest first."""
    rows = conn.execute(
        """
        SELECT s.shelf_id, s.product_id, p.name, p.category, s.capacity, s.ts,
               COALESCE(s.quantity, s.weight_g) AS level
        FROM shelf_state s LEFT JOIN products p USING (product_id)
        WHERE COALESCE(s.quantity, s.weight_g) <= s.capacity * :ratio
        ORDER BY COALESCE(s.quantity, s.weight_g) * 1.0 / s.capacity, s.ts, s.shelf_id
        LIMIT :limit
        """, {"ratio": below_fill_ratio, "limit": limit})
    return [RestockAlert(r["shelf_id"], r["product_id"], r["name"], r["category"], r["level"],
                         r["capacity"], round(r["level"] / r["capacity"], 3),
                         "empty" if r["level"] <= 0 else "low", r["ts"]) for r in rows]
