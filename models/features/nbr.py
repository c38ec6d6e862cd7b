"""Next-basket ranker features: the one implementation used by training and serving.

Everything a feature needs about a shopper lives in a compact **state** that is updated
incrementally as baskets arrive (no history rescans):

- per shopper: number of baskets, first / last visit time, line count, repeat-line count;
- per (shopper, item): basket count, first / previous / last basket index and time, and
  two exponentially decayed counts stored "as of the last purchase" so that adding a
  basket touches only the items in it.

:class:`ShopperState` is that state for one shopper (serving: keep one per customer,
``update`` it with each transaction, persist it with ``to_dict``/``from_dict``).
:class:`StateTable` is the same state for many shoppers as columnar arrays; training
builds it in one vectorised pass (:func:`build_state_table`), serving gets it from
``ShopperState.to_table``. :func:`candidate_features` turns a table, candidate items,
population :class:`ItemStats` and the current time into the float32 matrix the ONNX
ranker takes, columns in :data:`FEATURE_NAMES` order.

Time features use real timestamps when the data has them (``-1`` otherwise); the
basket-index versions are always present.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field

import numpy as np
import scipy.sparse as sp

from models.datasets.base import BasketDataset
from models.features.nbr_stats import ItemStats

logger = logging.getLogger(__name__)

FEATURE_SCHEMA_VERSION = "nbr-features-3"

# Decay per basket of the two decayed purchase counts: 0.5 tracks "bought in the last
# few visits", 0.9 a slow-moving repertoire (close to TIFU-KNN's within-basket decay).
DECAY_FAST = 0.5
DECAY_SLOW = 0.9
SECONDS_PER_DAY = 86_400.0
# Value of a feature that does not apply (item never bought, no timestamps, one
# purchase so no gap). Trees separate it from real values, which are all >= 0.
MISSING = -1.0

FEATURE_NAMES: tuple[str, ...] = (
    "u_log_baskets",
    "u_mean_basket_size",
    "u_repeat_share",
    "u_log_distinct_items",
    "u_days_since_visit",
    "u_mean_visit_gap_days",
    "ui_count",
    "ui_share",
    "ui_baskets_since",
    "ui_decayed_fast",
    "ui_decayed_slow",
    "ui_mean_gap_baskets",
    "ui_due_baskets",
    "ui_last_gap_baskets",
    "ui_first_seen_share",
    "ui_days_since",
    "ui_mean_gap_days",
    "ui_due_days",
    "ui_rank_count",
    "ui_rank_decayed",
    "uc_share",
    "uc_baskets_since",
    "uc_due_baskets",
    "uc_due_days",
    "uc_item_share",
    "i_popularity",
    "i_repeat_rate",
    "cop_basket",
    "cop_last_basket",
    "cop_shopper",
)


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
    end = np.append(start[1:], len(row)) - 1
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
        hs = [h for _, h in known]

        def col(name: str, dtype: type) -> np.ndarray:
            return np.array([getattr(h, name) for h in hs], dtype=dtype)

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


def shopper_weights(table: StateTable, n_items: int) -> sp.csr_matrix:
    """Shoppers × items: slow-decayed purchase counts as of now, rows summing to 1."""
    w = table.decayed_slow * DECAY_SLOW ** (table.n_baskets[table.pair_row] - 1 - table.last_b)
    m = sp.csr_matrix((w, (table.pair_row, table.pair_item)), shape=(table.n_shoppers, n_items))
    totals = np.asarray(m.sum(axis=1)).ravel()
    return sp.diags(1.0 / np.maximum(totals, 1e-12)).dot(m).tocsr()


def last_basket_weights(table: StateTable, n_items: int) -> sp.csr_matrix:
    """Shoppers × items: uniform weights over the items of the most recent basket."""
    in_last = table.last_b == table.n_baskets[table.pair_row] - 1
    m = sp.csr_matrix(
        (np.ones(int(in_last.sum())), (table.pair_row[in_last], table.pair_item[in_last])),
        shape=(table.n_shoppers, n_items),
    )
    totals = np.asarray(m.sum(axis=1)).ravel()
    return sp.diags(1.0 / np.maximum(totals, 1.0)).dot(m).tocsr()


def copurchase_scores(table: StateTable, stats: ItemStats) -> dict[str, sp.csr_matrix]:
    """The three co-purchase score matrices (shoppers × items) behind the cop_* features."""
    w = shopper_weights(table, stats.n_items)
    return {
        "cop_basket": (w @ stats.basket_cooc).tocsr(),
        "cop_last_basket": (last_basket_weights(table, stats.n_items) @ stats.basket_cooc).tocsr(),
        "cop_shopper": (w @ stats.shopper_cooc).tocsr(),
    }


def _lookup(m: sp.csr_matrix, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    if not len(rows):
        return np.zeros(0)
    return np.asarray(m[rows, cols]).ravel()


def _history_features(
    table: StateTable, rows: np.ndarray, keys: np.ndarray, now: np.ndarray
) -> dict[str, np.ndarray]:
    """Frequency, recency and cycle features of (row, key) pairs at one level.

    ``keys`` are item codes (or category codes at the category level; -1 = none).
    """
    n = table.n_baskets[rows].astype(np.float64)
    p = np.where(keys >= 0, table.pair_index(rows, np.maximum(keys, 0)), -1)
    has = p >= 0
    pc = np.maximum(p, 0)

    def pair(col: np.ndarray, missing: float = MISSING) -> np.ndarray:
        if not len(col):
            return np.full(len(rows), missing)
        return np.where(has, col[pc], missing).astype(np.float64)

    count = pair(table.count, 0.0)
    last_b = pair(table.last_b)
    first_b = pair(table.first_b)
    since_b = np.where(has, n - 1 - last_b, MISSING)
    mean_gap_b = np.where(count >= 2, (last_b - first_b) / np.maximum(count - 1, 1), MISSING)
    since_days = np.where(has, _days_between(pair(table.last_t, np.nan), now), MISSING)
    gap_total = _days_between(pair(table.first_t, np.nan), pair(table.last_t, np.nan))
    mean_gap_days = np.where(
        (count >= 2) & (gap_total >= 0), gap_total / np.maximum(count - 1, 1), MISSING
    )
    age = np.maximum(n - 1 - last_b, 0)
    return {
        "pair": p,
        "has": has,
        "n": n,
        "count": count,
        "first_b": first_b,
        "last_b": last_b,
        "prev_b": pair(table.prev_b),
        "since_b": since_b,
        "mean_gap_b": mean_gap_b,
        # Gap to the coming basket relative to the usual gap: 1 = due now, > 1 overdue.
        "due_b": _ratio(since_b + 1, mean_gap_b),
        "since_days": since_days,
        "mean_gap_days": mean_gap_days,
        "due_days": _ratio(since_days, mean_gap_days),
        "decayed_fast": np.where(has, pair(table.decayed_fast, 0.0) * DECAY_FAST**age, 0.0),
        "decayed_slow": np.where(has, pair(table.decayed_slow, 0.0) * DECAY_SLOW**age, 0.0),
    }


def pair_ranks(table: StateTable) -> dict[str, np.ndarray]:
    """Rank (0 = first) of each bought item within its shopper's repertoire.

    ``count``: by basket count, ties to the more recent (P-TopFreq's order);
    ``decayed``: by slow-decayed count as of now. Gives the trees the personal
    ordering directly, whatever the shopper's number of baskets.
    """
    n_now = table.n_baskets[table.pair_row]
    decayed = table.decayed_slow * DECAY_SLOW ** (n_now - 1 - table.last_b)
    out = {}
    for name, primary in (("count", table.count), ("decayed", decayed)):
        order = np.lexsort((table.pair_item, -table.last_b, -primary, table.pair_row))
        rank = np.empty(len(order), dtype=np.float64)
        starts = np.searchsorted(table.pair_row[order], table.pair_row[order], side="left")
        rank[order] = np.arange(len(order)) - starts
        out[name] = rank
    return out


def _pair_feature(values: np.ndarray, pair: np.ndarray) -> np.ndarray:
    """Per-pair values looked up by pair index (MISSING where the item was never bought)."""
    if not len(values):
        return np.full(len(pair), MISSING)
    return np.where(pair >= 0, values[np.maximum(pair, 0)], MISSING)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den where both are known (>= 0) and den > 0, else MISSING."""
    ok = (den > 0) & (num >= 0)
    return np.where(ok, num / np.where(ok, den, 1.0), MISSING)


def candidate_features(
    table: StateTable,
    rows: np.ndarray,
    items: np.ndarray,
    stats: ItemStats,
    now: np.ndarray | float,
    cop: dict[str, sp.csr_matrix] | None = None,
) -> np.ndarray:
    """Feature matrix (float32, len(rows) × len(FEATURE_NAMES)) for (shopper row, item).

    ``now`` is the request time per row (epoch seconds; NaN when unknown). Pass ``cop``
    (from :func:`copurchase_scores`) to reuse it across calls.
    """
    rows = np.asarray(rows, dtype=np.int64)
    items = np.asarray(items, dtype=np.int64)
    now_arr = np.broadcast_to(np.asarray(now, dtype=np.float64), rows.shape)
    cop = cop if cop is not None else copurchase_scores(table, stats)
    it = _history_features(table, rows, items, now_arr)
    ranks = pair_ranks(table)
    n = it["n"]
    if table.categories is not None:
        cat = _history_features(table.categories, rows, stats.item_category[items], now_arr)
    else:
        cat = _history_features(_EMPTY_TABLE, np.zeros_like(rows), np.full_like(items, -1),
                                now_arr)
    u_gap = np.where(
        n >= 2, _days_between(table.first_ts[rows], table.last_ts[rows]) / np.maximum(n - 1, 1),
        MISSING,
    )
    cols = {
        "u_log_baskets": np.log1p(n),
        "u_mean_basket_size": table.n_lines[rows] / np.maximum(n, 1),
        "u_repeat_share": table.n_repeat_lines[rows] / np.maximum(table.n_lines[rows], 1),
        "u_log_distinct_items": np.log1p(
            np.bincount(table.pair_row, minlength=table.n_shoppers)[rows]
        ),
        "u_days_since_visit": _days_between(table.last_ts[rows], now_arr),
        "u_mean_visit_gap_days": np.where(u_gap < 0, MISSING, u_gap),
        "ui_count": it["count"],
        "ui_share": it["count"] / np.maximum(n, 1),
        "ui_baskets_since": it["since_b"],
        "ui_decayed_fast": it["decayed_fast"],
        "ui_decayed_slow": it["decayed_slow"],
        "ui_mean_gap_baskets": it["mean_gap_b"],
        "ui_due_baskets": it["due_b"],
        "ui_last_gap_baskets": np.where(it["prev_b"] >= 0, it["last_b"] - it["prev_b"], MISSING),
        "ui_first_seen_share": np.where(it["has"], (n - it["first_b"]) / np.maximum(n, 1), 0.0),
        "ui_days_since": it["since_days"],
        "ui_mean_gap_days": it["mean_gap_days"],
        "ui_due_days": it["due_days"],
        "ui_rank_count": _pair_feature(ranks["count"], it["pair"]),
        "ui_rank_decayed": _pair_feature(ranks["decayed"], it["pair"]),
        "uc_share": np.where(cat["has"], cat["count"] / np.maximum(cat["n"], 1), MISSING),
        "uc_baskets_since": cat["since_b"],
        "uc_due_baskets": cat["due_b"],
        "uc_due_days": cat["due_days"],
        "uc_item_share": np.where(cat["has"], it["count"] / np.maximum(cat["count"], 1), MISSING),
        "i_popularity": stats.popularity[items],
        "i_repeat_rate": stats.repeat_rate[items],
        "cop_basket": _lookup(cop["cop_basket"], rows, items),
        "cop_last_basket": _lookup(cop["cop_last_basket"], rows, items),
        "cop_shopper": _lookup(cop["cop_shopper"], rows, items),
    }
    return np.column_stack([cols[name] for name in FEATURE_NAMES]).astype(np.float32)


def _days_between(start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """(end - start) in days, MISSING where either time is unknown."""
    d = (np.asarray(end, np.float64) - np.asarray(start, np.float64)) / SECONDS_PER_DAY
    return np.where(np.isfinite(d), d, MISSING)


def _empty_table() -> StateTable:
    i64 = np.zeros(0, dtype=np.int64)
    f64 = np.zeros(0, dtype=np.float64)
    one_i, one_f = np.zeros(1, dtype=np.int64), np.full(1, np.nan)
    return StateTable(one_i, one_f, one_f, one_i, one_i, i64, i64, i64, i64, i64, i64, f64,
                      f64, f64, f64)


# Stand-in category level for data without categories: every lookup misses.
_EMPTY_TABLE = _empty_table()
