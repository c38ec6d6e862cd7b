"""Any basket data as CSV, so other datasets run through the same evaluation.

Columns (header required, names case-insensitive):

- ``user_id`` — the shopper;
- ``basket_id`` (a transaction id) **or** ``basket_index`` (0 = oldest);
- ``item_id``;
- optional ``timestamp`` — epoch seconds or anything ``pandas.to_datetime`` parses
  (naive times are taken as UTC);
- optional ``quantity``, ``price`` (amount paid for the line), ``category``.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from models.datasets.base import BasketDataset, build_dataset

logger = logging.getLogger(__name__)

REQUIRED = ("user_id", "item_id")
BASKET_COLUMNS = ("basket_id", "basket_index")


class CsvFormatError(ValueError):
    """The CSV lacks a required column or has unusable values."""


def load_csv(path: str | Path, name: str | None = None) -> BasketDataset:
    """Load a basket CSV (see the module docstring for the columns)."""
    path = Path(path)
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    frame.columns = [c.strip().lower() for c in frame.columns]
    for col in REQUIRED:
        if col not in frame.columns:
            raise CsvFormatError(f"{path}: missing column {col!r}")
    basket_col = next((c for c in BASKET_COLUMNS if c in frame.columns), None)
    if basket_col is None:
        raise CsvFormatError(f"{path}: needs a basket_id or basket_index column")
    basket: np.ndarray = frame[basket_col].to_numpy()
    if basket_col == "basket_index":
        basket = pd.to_numeric(frame[basket_col], errors="raise").to_numpy(np.int64)
    ts = None
    if "timestamp" in frame.columns:
        ts = _parse_timestamps(frame["timestamp"], path)
    return build_dataset(
        name or path.stem.split(".")[0],
        frame["user_id"].to_numpy(),
        basket,
        frame["item_id"].to_numpy(),
        ts=ts,
        category_keys=frame["category"].to_numpy() if "category" in frame.columns else None,
        quantity=_numeric(frame, "quantity"),
        price=_numeric(frame, "price"),
    )


def _numeric(frame: pd.DataFrame, col: str) -> np.ndarray | None:
    if col not in frame.columns:
        return None
    return pd.to_numeric(frame[col].replace("", np.nan)).to_numpy(np.float32)


def _parse_timestamps(col: pd.Series, path: Path) -> np.ndarray:
    numeric = pd.to_numeric(col.replace("", np.nan), errors="coerce")
    if numeric.notna().all():
        return numeric.to_numpy(np.float64)
    try:
        parsed = pd.to_datetime(col, utc=True, format="mixed")
    except (ValueError, TypeError) as exc:
        raise CsvFormatError(f"{path}: unparseable timestamp column: {exc}") from exc
    # Seconds since the epoch regardless of the datetime unit pandas picked.
    return ((parsed - pd.Timestamp(0, tz="UTC")) / pd.Timedelta(seconds=1)).to_numpy(np.float64)
