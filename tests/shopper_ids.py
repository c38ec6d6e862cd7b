"""Devices name shoppers by an opaque id (`customers.shopper_ref`), which a loyalty-number
lookup returns; tests that seed customers without cards read it from the database."""

from __future__ import annotations

import sqlite3
from pathlib import Path


def device_shopper_id(db_path: Path, customer_id: str) -> str:
    with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True) as conn:
        row = conn.execute("SELECT shopper_ref FROM customers WHERE customer_id = ?",
                           (customer_id,)).fetchone()
    assert row is not None, f"no customer {customer_id!r} in {db_path}"
    return str(row[0])
