"""Per-shopper purchase state behind the next-basket features, kept incrementally.

- per shopper: number of baskets, first / last visit time, line count, repeat-line count;
- per (shopper, item): basket count, first / previous / last basket index and time, and
  two exponentially decayed counts stored "as of the last purchase", so adding a basket
  touches only the items in it;
- the same one level up, per (shopper, product category), when categories are known.

:class:`ShopperState` is the state of one shopper (serving: one per customer, updated
per transaction, persisted with ``to_dict`` / ``from_dict``). :class:`StateTable` is the
same for many shoppers as columnar arrays; training builds it in one vectorised pass
(:func:`build_state_table`), serving gets it from :meth:`ShopperState.to_table`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields
from operator import attrgetter
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # training only: serving must not import the dataset loaders (pandas)
    from models.datasets.base import BasketDataset



logger = logging.getLogger(__name__)

# The ranker's feature schema: what `nbr.candidate_features` computes from this state. Here,
# not beside it, so the ingestion writer, which keeps the state, never imports scipy.
FEATURE_SCHEMA_VERSION = "nbr-features-4"

# Decay per basket of the two decayed purchase counts: 0.5 tracks "bought in the last
# few visits", 0.9 a slow-moving repertoire (close to TIFU-KNN's within-basket decay).
DECAY_FAST = 0.5
DECAY_SLOW = 0.9


@dataclass
class StateTable:
    """Columnar state of several shoppers (row r = shopper r; pairs sorted by row, item)."""

    n_baskets: np.ndarray  # int64 [S]
    first_ts: np.ndarray  # float64 [S], NaN without timestamps
    last_ts: np.ndarray  # float64 [S]
    n_lines: np.ndarray  # int64 [S]: distinct items summed over baskets
    n_repeat_lines: np.ndarray  # int64 [S]: of those, items bought in an earlier basket
    pair_row: np.ndarray  # int64 [P]
    pair_item: np.ndarray  # int64 [P]
    count: np.ndarray  # int64 [P]: baskets containing the item
    first_b: np.ndarray  # int64 [P]
    prev_b: np.ndarray  # int64 [P], -1 when bought once
    last_b: np.ndarray  # int64 [P]
    first_t: np.ndarray  # float64 [P]
    last_t: np.ndarray  # float64 [P]
    decayed_fast: np.ndarray  # float64 [P]: sum DECAY_FAST**(last_b - b) over purchases
    decayed_slow: np.ndarray  # float64 [P]
    # The same state one level up: "items" are product categories and a basket holds
    # each category once. None when the data has no categories.
    categories: StateTable | None = None

    @property
    def n_shoppers(self) -> int:
        return len(self.n_baskets)

    def pair_index(self, rows: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Index of each (row, item) pair in the pair arrays, -1 if never bought."""
        key = self.pair_row * _KEY_BASE + self.pair_item
        want = np.asarray(rows, np.int64) * _KEY_BASE + np.asarray(items, np.int64)
        pos = np.searchsorted(key, want)
        pos_c = np.minimum(pos, max(len(key) - 1, 0))
        found = (pos < len(key)) & (key[pos_c] == want) if len(key) else np.zeros(
            len(want), dtype=bool
        )
        return np.where(found, pos_c, -1)

    def decayed_slow_now(self) -> np.ndarray:
        """Per pair: the slow-decayed count aged to the shopper's latest basket (stored
        counts are as of the pair's last purchase)."""
        return self.decayed_slow * DECAY_SLOW ** (self.n_baskets[self.pair_row] - 1
                                                  - self.last_b)


    def take(self, rows: np.ndarray) -> StateTable:
        """The state of the given shoppers as a new table (row i = ``rows[i]``)."""
        rows = np.asarray(rows, dtype=np.int64)
        new_row = np.full(self.n_shoppers, -1, dtype=np.int64)
        new_row[rows] = np.arange(len(rows))
        sel = np.flatnonzero(new_row[self.pair_row] >= 0)
        sel = sel[np.lexsort((self.pair_item[sel], new_row[self.pair_row[sel]]))]
        pair_cols = {
            name: getattr(self, name)[sel]
            for name in ("pair_item", "count", "first_b", "prev_b", "last_b", "first_t",
                         "last_t", "decayed_fast", "decayed_slow")
        }
        return StateTable(
            n_baskets=self.n_baskets[rows],
            first_ts=self.first_ts[rows],
            last_ts=self.last_ts[rows],
            n_lines=self.n_lines[rows],
            n_repeat_lines=self.n_repeat_lines[rows],
            pair_row=new_row[self.pair_row[sel]],
            **pair_cols,
            categories=None if self.categories is None else self.categories.take(rows),
        )


# Pair keys are row * _KEY_BASE + item; large enough for any item catalogue.
_KEY_BASE = np.int64(1 << 32)


def build_state_table(history: BasketDataset, users: np.ndarray) -> StateTable:
    """State of the given user codes after all their baskets in ``history`` (vectorised).

    Row r of the table is ``users[r]``. Equals replaying each user's baskets through
    :meth:`ShopperState.update` (the tests check this). With categories in the data the
    table carries the category-level state too.
    """
    table = _build_level(history, history.item, users)
    if history.category is not None:
        table.categories = _build_level(history, history.category, users)
    return table


def _build_level(history: BasketDataset, keys: np.ndarray, users: np.ndarray) -> StateTable:
    """State over ``keys`` (item or category code per line item) for the given users."""
    users = np.asarray(users, dtype=np.int64)
    row_of = np.full(history.n_users, -1, dtype=np.int64)
    row_of[users] = np.arange(len(users))
    sel = row_of[history.user] >= 0
    row = row_of[history.user[sel]]
    b = history.basket[sel].astype(np.int64)
    item = keys[sel].astype(np.int64)
    ts = history.ts[sel]
    # One entry per (row, item, basket): duplicates inside a basket count once.
    order = np.lexsort((b, item, row))
    row, item, b, ts = row[order], item[order], b[order], ts[order]
    dup = np.zeros(len(row), dtype=bool)
    dup[1:] = (row[1:] == row[:-1]) & (item[1:] == item[:-1]) & (b[1:] == b[:-1])
    row, item, b, ts = row[~dup], item[~dup], b[~dup], ts[~dup]

    n_s = len(users)
    n_baskets = np.zeros(n_s, dtype=np.int64)
    np.maximum.at(n_baskets, row, b + 1)
    first_ts = np.full(n_s, np.inf)
    last_ts = np.full(n_s, -np.inf)
    np.minimum.at(first_ts, row, np.nan_to_num(ts, nan=np.inf))
    np.maximum.at(last_ts, row, np.nan_to_num(ts, nan=-np.inf))
    first_ts[~np.isfinite(first_ts)] = np.nan
    last_ts[~np.isfinite(last_ts)] = np.nan

    new_pair = np.ones(len(row), dtype=bool)
    new_pair[1:] = (row[1:] != row[:-1]) | (item[1:] != item[:-1])
    start = np.flatnonzero(new_pair)
    # (sliced: with no line at all there is no pair, and no end either)
    end = np.append(start[1:], len(row))[:len(start)] - 1
    count = end - start + 1
    pair_id = np.cumsum(new_pair) - 1
    last_b = b[end]
    age = last_b[pair_id] - b
    return StateTable(
        n_baskets=n_baskets,
        first_ts=first_ts,
        last_ts=last_ts,
        n_lines=np.bincount(row, minlength=n_s).astype(np.int64),
        n_repeat_lines=np.bincount(row[~new_pair], minlength=n_s).astype(np.int64),
        pair_row=row[start],
        pair_item=item[start],
        count=count.astype(np.int64),
        first_b=b[start],
        prev_b=np.where(count > 1, b[np.maximum(end - 1, 0)], -1),
        last_b=last_b,
        first_t=ts[start],
        last_t=ts[end],
        decayed_fast=np.bincount(pair_id, DECAY_FAST**age, minlength=len(start)),
        decayed_slow=np.bincount(pair_id, DECAY_SLOW**age, minlength=len(start)),
    )


@dataclass
class ItemHistory:
    """One shopper's history with one item (see :class:`StateTable` for the fields)."""

    count: int
    first_b: int
    prev_b: int
    last_b: int
    first_t: float
    last_t: float
    decayed_fast: float
    decayed_slow: float


_ITEM_FIELDS = tuple(f.name for f in fields(ItemHistory))
_item_fields_of = attrgetter(*_ITEM_FIELDS)


@dataclass
class ShopperState:
    """One shopper's feature state; ``update`` once per new basket, oldest first.

    Items are keyed by their product id (string), not by a model's item code, so the
    state survives retraining: :meth:`to_table` maps ids to the codes of the model in
    use, dropping products that model does not know.
    """

    n_baskets: int = 0
    first_ts: float = math.nan
    last_ts: float = math.nan
    n_lines: int = 0
    n_repeat_lines: int = 0
    items: dict[str, ItemHistory] = field(default_factory=dict)
    # Category-level state (same structure, categories as items), when categories are
    # passed to `update`. Pass them with every basket or never.
    categories: ShopperState | None = None

    def update(
        self,
        items: Iterable[str | int],
        ts: float = math.nan,
        categories: Iterable[str] | None = None,
    ) -> None:
        """Add one basket bought at ``ts`` (epoch s).

        ``items`` are product ids (duplicates count once); ``categories`` the product
        categories of the basket's lines, if the catalogue has them.
        """
        if categories is not None:
            if self.categories is None:
                self.categories = ShopperState()
            self.categories.update(categories, ts)
        b = self.n_baskets
        for it in sorted({str(i) for i in items}):
            self.n_lines += 1
            h = self.items.get(it)
            if h is None:
                self.items[it] = ItemHistory(1, b, -1, b, ts, ts, 1.0, 1.0)
                continue
            self.n_repeat_lines += 1
            gap = b - h.last_b
            h.decayed_fast = h.decayed_fast * DECAY_FAST**gap + 1.0
            h.decayed_slow = h.decayed_slow * DECAY_SLOW**gap + 1.0
            h.count += 1
            h.prev_b, h.last_b, h.last_t = h.last_b, b, ts
        self.n_baskets = b + 1
        if not math.isnan(ts):
            self.first_ts = ts if math.isnan(self.first_ts) else min(self.first_ts, ts)
            self.last_ts = ts if math.isnan(self.last_ts) else max(self.last_ts, ts)

    def to_table(
        self, item_index: Mapping[str, int], category_index: Mapping[str, int] | None = None
    ) -> StateTable:
        """This shopper as a one-row :class:`StateTable` in a model's item codes.

        The category level is included when this state has one and ``category_index``
        (the model's category vocabulary) is given.
        """
        known = sorted((item_index[k], h) for k, h in self.items.items() if k in item_index)
        # One array of every field (ints are exact in float64), split into columns: a
        # request's table in one pass over the items rather than one per field.
        values = np.array([_item_fields_of(h) for _, h in known],
                          dtype=np.float64).reshape(len(known), len(_ITEM_FIELDS))

        def col(name: str, dtype: type) -> np.ndarray:
            return values[:, _ITEM_FIELDS.index(name)].astype(dtype)

        return StateTable(
            n_baskets=np.array([self.n_baskets], dtype=np.int64),
            first_ts=np.array([self.first_ts]),
            last_ts=np.array([self.last_ts]),
            n_lines=np.array([self.n_lines], dtype=np.int64),
            n_repeat_lines=np.array([self.n_repeat_lines], dtype=np.int64),
            pair_row=np.zeros(len(known), dtype=np.int64),
            pair_item=np.array([c for c, _ in known], dtype=np.int64),
            count=col("count", np.int64),
            first_b=col("first_b", np.int64),
            prev_b=col("prev_b", np.int64),
            last_b=col("last_b", np.int64),
            first_t=col("first_t", np.float64),
            last_t=col("last_t", np.float64),
            decayed_fast=col("decayed_fast", np.float64),
            decayed_slow=col("decayed_slow", np.float64),
            categories=(
                self.categories.to_table(category_index)
                if self.categories is not None and category_index is not None
                else None
            ),
        )

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form (NaN times serialise as JSON NaN, which json.loads reads back)."""
        d = asdict(self)
        d["items"] = {k: asdict(v) for k, v in self.items.items()}
        d["categories"] = None if self.categories is None else self.categories.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict[str, object]) -> ShopperState:
        raw_items = d.get("items", {})
        assert isinstance(raw_items, dict)
        items = {str(k): ItemHistory(**v) for k, v in raw_items.items()}
        raw_cats = d.get("categories")
        cats = cls.from_dict(raw_cats) if isinstance(raw_cats, dict) else None
        scalars = {k: v for k, v in d.items() if k not in ("items", "categories")}
        return cls(items=items, categories=cats, **scalars)  # type: ignore[arg-type]


def _empty_table() -> StateTable:
    i64 = np.zeros(0, dtype=np.int64)
    f64 = np.zeros(0, dtype=np.float64)
    one_i, one_f = np.zeros(1, dtype=np.int64), np.full(1, np.nan)
    return StateTable(one_i, one_f, one_f, one_i, one_i, i64, i64, i64, i64, i64, i64, f64,
                      f64, f64, f64)


# Stand-in category level for data without categories: every lookup misses.
EMPTY_TABLE = _empty_table()
