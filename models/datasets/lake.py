"""Baskets from the cloud lake's rows: one store's, or the whole chain's.

The lake (``cloud_sync/lake``) holds one row per event with the envelope (``event_id``,
``store_id``, ``type``, ``ts``) and the payload's fields; a POS sale is a
``pos.transaction`` row with ``transaction_id``, ``customer_id`` (a pseudonym, or null)
and ``items`` (``product_id``, ``quantity``, ``unit_price``, ``discount``). ``models``
imports no other part, so this takes a ``pyarrow.Table`` or any iterable of row dicts
with those column names, not the lake itself.

- Only sales of a known shopper become baskets: an anonymous sale (``customer_id`` null,
  a shopper without consent) is nobody's history.
- A basket is one transaction at one store (transaction ids are a till's, unique per store
  only); the shopper's pseudonym is chain-wide, so chain-wide a shopper's baskets from
  every store form one history.
- ``price`` is what was paid for the line: ``quantity * unit_price - discount``.
- The lake has no categories; pass ``categories`` (product id -> category, the chain's
  catalog) to get them, products missing from it fall in ``UNKNOWN_CATEGORY``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pyarrow as pa

from models.datasets.base import BasketDataset, build_dataset

POS_TYPE = "pos.transaction"
CHAIN = "chain"
UNKNOWN_CATEGORY = "UNKNOWN"
_COLUMNS = ("store_id", "type", "ts", "transaction_id", "customer_id", "items")


def load_lake(
    rows: pa.Table | Iterable[Mapping[str, Any]],
    *,
    store_id: str | None = None,
    categories: Mapping[str, str] | None = None,
    name: str | None = None,
) -> BasketDataset:
    """The shoppers' baskets in ``rows``: of ``store_id`` only, or of every store (None).

    Rows of other event types, anonymous sales and sales without items are skipped.
    """
    table = rows if isinstance(rows, pa.Table) else _table(rows)
    users: list[str] = []
    baskets: list[str] = []
    items: list[str] = []
    ts: list[float] = []
    quantity: list[float] = []
    paid: list[float] = []
    columns = {c: table.column(c).to_pylist() for c in _COLUMNS}
    for store, kind, when, transaction, customer, lines in zip(
            *(columns[c] for c in _COLUMNS), strict=True):
        if kind != POS_TYPE or customer is None or not lines:
            continue
        if store_id is not None and store != store_id:
            continue
        seconds = _epoch(when)
        for line in lines:
            qty = float(line.get("quantity") or 0.0)
            users.append(customer)
            baskets.append(f"{store}/{transaction}")
            items.append(str(line["product_id"]))
            ts.append(seconds)
            quantity.append(qty)
            paid.append(qty * float(line.get("unit_price") or 0.0)
                        - float(line.get("discount") or 0.0))
    category_keys = None
    if categories is not None:
        category_keys = np.array([categories.get(i, UNKNOWN_CATEGORY) for i in items],
                                 dtype=object).astype(str)
    return build_dataset(
        name or (f"lake:{store_id}" if store_id else f"lake:{CHAIN}"),
        np.array(users, dtype=str), np.array(baskets, dtype=str), np.array(items, dtype=str),
        ts=np.array(ts, dtype=np.float64), category_keys=category_keys,
        quantity=np.array(quantity, np.float32), price=np.array(paid, np.float32),
    )


def _table(rows: Iterable[Mapping[str, Any]]) -> pa.Table:
    columns: dict[str, list[Any]] = {c: [] for c in _COLUMNS}
    for row in rows:
        for c in _COLUMNS:
            columns[c].append(row.get(c))
    return pa.table({c: pa.array(v, type=pa.null() if not v else None)
                     for c, v in columns.items()})


def _epoch(value: Any) -> float:
    """Epoch seconds of a lake timestamp (datetime, RFC 3339 text or a number)."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if isinstance(value, datetime):
        # The lake's times are UTC; a naive one (a hand-made row) is read as UTC too.
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()
    return float(value)
