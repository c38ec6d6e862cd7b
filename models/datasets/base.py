"""The in-memory basket dataset every loader returns and every model consumes.

One row per line item, stored as parallel numpy arrays (columnar, so a year of a
supermarket's transactions fits in a few tens of MB and vectorised code stays simple).
Rows are sorted by ``(user, basket)``; ``basket`` is the basket's index *within its user*,
0 = oldest, contiguous. Users, items and categories are integer codes; the ``*_ids`` /
``category_names`` lists decode them back to the source's identifiers.

Semantics of the optional columns, the same for every loader:

- ``ts``: the basket's time in epoch seconds (float64), repeated on each of its line items;
  all-NaN when the source has no timestamps (Ta-Feng as shipped).
- ``category``: the item's product category code (int32), or ``None``.
- ``quantity``: units bought on the line (float32), or ``None``.
- ``price``: the amount paid for the whole line (all units, after discounts; float32),
  i.e. what sums to the shopper's spend, or ``None``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np

logger = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class BasketDataset:
    """Line items of many shoppers' baskets; see the module docstring for the layout."""

    name: str
    user: np.ndarray
    basket: np.ndarray
    item: np.ndarray
    ts: np.ndarray
    user_ids: list[str]
    item_ids: list[str]
    category: np.ndarray | None = None
    category_names: list[str] | None = None
    quantity: np.ndarray | None = None
    price: np.ndarray | None = None
    # Cached per-basket offsets; derived, never passed by callers.
    _basket_starts: np.ndarray | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        n = len(self.item)
        for col in ("user", "basket", "ts"):
            if len(getattr(self, col)) != n:
                raise ValueError(f"BasketDataset.{col} has {len(getattr(self, col))} rows, not {n}")
        for col in ("category", "quantity", "price"):
            arr = getattr(self, col)
            if arr is not None and len(arr) != n:
                raise ValueError(f"BasketDataset.{col} has {len(arr)} rows, not {n}")
        if (self.category is None) != (self.category_names is None):
            raise ValueError("BasketDataset.category and category_names go together")

    # ----------------------------------------------------------------- sizes
    @property
    def n_rows(self) -> int:
        return len(self.item)

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    @property
    def has_timestamps(self) -> bool:
        return bool(len(self.ts)) and not bool(np.isnan(self.ts).all())

    # --------------------------------------------------------------- baskets
    def basket_starts(self) -> np.ndarray:
        """Row offsets where each basket starts, plus ``n_rows`` at the end (int64)."""
        if self._basket_starts is None:
            change = np.ones(self.n_rows, dtype=bool)
            if self.n_rows:
                change[1:] = (self.user[1:] != self.user[:-1]) | (
                    self.basket[1:] != self.basket[:-1]
                )
            starts = np.append(np.flatnonzero(change), self.n_rows).astype(np.int64)
            object.__setattr__(self, "_basket_starts", starts)
        assert self._basket_starts is not None
        return self._basket_starts

    def baskets_per_user(self) -> np.ndarray:
        """Number of baskets of each user code (int64, length ``n_users``)."""
        starts = self.basket_starts()[:-1]
        return np.bincount(self.user[starts], minlength=self.n_users).astype(np.int64)

    def user_baskets(self, user: int) -> list[np.ndarray]:
        """The item codes of each basket of one user, oldest first (slow path, for tests)."""
        rows = np.flatnonzero(self.user == user)
        out: list[np.ndarray] = []
        for b in np.unique(self.basket[rows]):
            out.append(self.item[rows[self.basket[rows] == b]])
        return out

    # ------------------------------------------------------------- filtering
    def select_rows(self, mask: np.ndarray) -> BasketDataset:
        """Keep the rows where ``mask`` is true; renumber baskets so they stay contiguous.

        User and item codes (and their decode lists) are kept as they are, so codes stay
        comparable with the unfiltered dataset; users left with no rows simply have no
        baskets.
        """
        mask = np.asarray(mask, dtype=bool)

        def pick(a: np.ndarray | None) -> np.ndarray | None:
            return None if a is None else a[mask]

        user = self.user[mask]
        old_basket = self.basket[mask]
        return replace(
            self,
            user=user,
            basket=_renumber_baskets(user, old_basket),
            item=self.item[mask],
            ts=self.ts[mask],
            category=pick(self.category),
            quantity=pick(self.quantity),
            price=pick(self.price),
            _basket_starts=None,
        )

    def select_users(self, users: np.ndarray | Sequence[int]) -> BasketDataset:
        """Keep only the line items of the given user codes."""
        keep = np.zeros(self.n_users, dtype=bool)
        keep[np.asarray(users, dtype=np.int64)] = True
        return self.select_rows(keep[self.user])

    def drop_last_baskets(self) -> tuple[BasketDataset, BasketDataset]:
        """Split into (history, last basket of each user)."""
        n_b = self.baskets_per_user()
        is_last = self.basket == (n_b[self.user] - 1)
        return self.select_rows(~is_last), self.select_rows(is_last)

    def summary(self) -> dict[str, object]:
        """Counts for logs and bundle manifests."""
        n_b = self.baskets_per_user()
        return {
            "name": self.name,
            "rows": self.n_rows,
            "users": int((n_b > 0).sum()),
            "items": int(np.unique(self.item).size),
            "baskets": int(n_b.sum()),
            "has_timestamps": self.has_timestamps,
            "has_categories": self.category is not None,
        }


def _renumber_baskets(user: np.ndarray, basket: np.ndarray) -> np.ndarray:
    """Map each user's (sorted) basket indices to 0..n-1, keeping order."""
    if not len(user):
        return basket.astype(np.int32)
    new_basket_row = np.ones(len(user), dtype=bool)
    new_basket_row[1:] = (user[1:] != user[:-1]) | (basket[1:] != basket[:-1])
    new_user_row = np.ones(len(user), dtype=bool)
    new_user_row[1:] = user[1:] != user[:-1]
    basket_no = np.cumsum(new_basket_row) - 1  # global basket number per row
    first_of_user = np.maximum.accumulate(np.where(new_user_row, basket_no, 0))
    return (basket_no - first_of_user).astype(np.int32)


def encode(values: Sequence[object] | np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Integer-code arbitrary identifiers; returns (codes int32, decode list of str).

    Codes follow the sorted order of the identifiers so that encoding is deterministic.
    """
    uniq, codes = np.unique(np.asarray(values), return_inverse=True)
    return codes.astype(np.int32), [str(u) for u in uniq]


def build_dataset(
    name: str,
    user_keys: Sequence[object] | np.ndarray,
    basket_keys: Sequence[object] | np.ndarray,
    item_keys: Sequence[object] | np.ndarray,
    ts: np.ndarray | None = None,
    category_keys: Sequence[object] | np.ndarray | None = None,
    quantity: np.ndarray | None = None,
    price: np.ndarray | None = None,
) -> BasketDataset:
    """Build a dataset from raw identifier columns (one entry per line item).

    ``basket_keys`` identifies a basket within its user (a transaction id or an index).
    Baskets are ordered by their timestamp when there is one, else by the basket key's
    natural order (so numeric indices sort numerically). Line items keep input order
    inside a basket.
    """
    user, user_ids = encode(user_keys)
    item, item_ids = encode(item_keys)
    n = len(user)
    ts_arr = np.full(n, np.nan) if ts is None else np.asarray(ts, dtype=np.float64)
    basket_raw = np.asarray(basket_keys)
    # Order baskets by the basket's own (minimum) time, so a basket whose rows carry
    # slightly different times is never split.
    _, basket_code = np.unique(
        np.stack([user.astype(np.int64), _rank(basket_raw)]), axis=1, return_inverse=True
    )
    basket_code = basket_code.reshape(-1)
    if ts is not None and not np.isnan(ts_arr).all():
        b_time = np.full(basket_code.max() + 1 if n else 0, np.inf)
        np.minimum.at(b_time, basket_code, np.nan_to_num(ts_arr, nan=np.inf))
        order_key = b_time[basket_code]
    else:
        order_key = np.zeros(n)
    order = np.lexsort((np.arange(n), basket_code, order_key, user))
    user = user[order]
    basket_code = basket_code[order]
    cat = cat_names = None
    if category_keys is not None:
        cat, cat_names = encode(np.asarray(category_keys)[order])
    ds = BasketDataset(
        name=name,
        user=user,
        basket=_renumber_baskets(user, basket_code),
        item=item[order],
        ts=ts_arr[order],
        user_ids=user_ids,
        item_ids=item_ids,
        category=cat,
        category_names=cat_names,
        quantity=None if quantity is None else np.asarray(quantity, np.float32)[order],
        price=None if price is None else np.asarray(price, np.float32)[order],
    )
    logger.info("built dataset %s", ds.summary())
    return ds


def _rank(values: np.ndarray) -> np.ndarray:
    """Dense rank of values (numbers numerically, anything else as text)."""
    if values.dtype.kind not in "iuf":
        values = values.astype(str)
    return np.unique(values, return_inverse=True)[1].reshape(-1).astype(np.int64)
