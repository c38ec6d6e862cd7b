"""Ta-Feng grocery baskets as shipped in ``shared/data/tafeng`` (see its README)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from models.datasets.base import BasketDataset, build_dataset

logger = logging.getLogger(__name__)

BASKETS_FILE = "baskets.csv.gz"
KEYSET_PATTERN = "tafeng_keyset_{}.json"
# The README's five published splits.
N_KEYSETS = 5
# parents[2] of models/datasets/tafeng.py is the repository root; the shared data sits
# beside the checkout.
DEFAULT_TAFENG_DIR = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "tafeng"


def default_tafeng_dir() -> Path:
    """``shared/data/tafeng`` beside the checkout, resolved."""
    return DEFAULT_TAFENG_DIR.resolve()


def load_tafeng(directory: str | Path | None = None) -> BasketDataset:
    """Load ``baskets.csv.gz`` (user_id, basket_index, item_id; no timestamps)."""
    base = Path(directory) if directory is not None else default_tafeng_dir()
    path = base / BASKETS_FILE
    if not path.exists():
        raise FileNotFoundError(f"Ta-Feng baskets not found at {path}")
    frame = pd.read_csv(path, dtype={"user_id": np.int64, "basket_index": np.int64,
                                     "item_id": np.int64})
    return build_dataset(
        "tafeng",
        frame["user_id"].to_numpy(),
        frame["basket_index"].to_numpy(),
        frame["item_id"].to_numpy(),
    )


def load_tafeng_keysets(directory: str | Path | None = None) -> list[dict[str, list[str]]]:
    """The five shipped user splits: ``{"train": [...], "val": [...], "test": [...]}``."""
    base = Path(directory) if directory is not None else default_tafeng_dir()
    keysets = []
    for i in range(N_KEYSETS):
        with (base / KEYSET_PATTERN.format(i)).open() as fh:
            raw = json.load(fh)
        keysets.append({k: [str(u) for u in raw[k]] for k in ("train", "val", "test")})
    return keysets
