"""Next-basket ranker features: the one implementation used by training and serving.

:func:`candidate_features` turns a shopper :class:`StateTable` (see
:mod:`models.features.nbr_state`: compact, incrementally updated, no history rescans),
candidate items, population :class:`ItemStats` and the current time into the float32
matrix the ONNX ranker takes, columns in :data:`FEATURE_NAMES` order.

Time features use real timestamps when the data has them (``-1`` otherwise); the
basket-index versions are always present.
"""

from __future__ import annotations

import logging

import numpy as np
import scipy.sparse as sp

from models.features.nbr_neighbours import NEIGHBOUR_SCORE_NAMES, neighbour_scores
from models.features.nbr_state import (
    DECAY_FAST,
    DECAY_SLOW,
    EMPTY_TABLE,
    FEATURE_SCHEMA_VERSION,
    ItemHistory,
    ShopperState,
    StateTable,
    build_state_table,
)
from models.features.nbr_stats import ItemStats
from models.features.sparse_rows import (
    DENSE_MAX_CELLS,
    ScoreMatrix,
    row_pointers,
    weighted_row_sums,
)

logger = logging.getLogger(__name__)

__all__ = [
    "DECAY_FAST",
    "DECAY_SLOW",
    "FEATURE_NAMES",
    "FEATURE_SCHEMA_VERSION",
    "MISSING",
    "ItemHistory",
    "ShopperState",
    "StateTable",
    "build_state_table",
    "candidate_features",
    "candidate_scores",
    "copurchase_scores",
]

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
    "knn_near",
    "knn_wide",
)


# A few shoppers' weights over items as (row, item, weight) arrays, in CSR order.
Weights = tuple[np.ndarray, np.ndarray, np.ndarray]


def shopper_weights(table: StateTable) -> Weights:
    """(row, item, weight) of each shopper's slow-decayed purchase counts as of now, each
    row's weights summing to 1."""
    w = table.decayed_slow_now()
    return _row_normalized(table, np.ones(len(w), dtype=bool), w, floor=1e-12)


def last_basket_weights(table: StateTable) -> Weights:
    """(row, item, weight): uniform weights over the items of each most recent basket."""
    in_last = table.last_b == table.n_baskets[table.pair_row] - 1
    return _row_normalized(table, in_last, np.ones(len(in_last)), floor=1.0)


def _row_normalized(table: StateTable, keep: np.ndarray, weights: np.ndarray, floor: float
                    ) -> Weights:
    """The kept pairs' (row, item, weight), each row's weights divided by their sum (at
    least `floor`); in (row, item) order, as the pair arrays are."""
    rows, items, w = table.pair_row[keep], table.pair_item[keep], weights[keep]
    totals = np.maximum(np.bincount(rows, w, minlength=table.n_shoppers), floor)
    return rows, items, w / totals[rows]


def _as_csr(weights: Weights, n_shoppers: int, n_items: int) -> sp.csr_matrix:
    """Shoppers × items, built straight from the pair arrays (already in CSR order): going
    through COO, `diags` and a product costs ~10x more."""
    rows, items, w = weights
    return sp.csr_matrix((w, items, row_pointers(rows, n_shoppers)),
                         shape=(n_shoppers, n_items))


def _times(left: sp.csr_matrix | Weights, cooc: sp.csr_matrix, n_shoppers: int
           ) -> ScoreMatrix:
    """Shoppers × items: Σ_j left[shopper, j] · cooc[j, :]. CSR in, CSR out with sorted
    indices (what :func:`_lookup`'s binary search needs); triplets in, dense out."""
    if isinstance(left, sp.csr_matrix):
        product = left @ cooc
        product.sort_indices()
        return product
    # Gather the cooc rows of every weighted item and add them up per shopper.
    rows, items, w = left
    return weighted_row_sums(rows, items, w, cooc, n_shoppers)


def copurchase_scores(table: StateTable, stats: ItemStats, dense: bool | None = None
                      ) -> dict[str, ScoreMatrix]:
    """The three co-purchase score matrices (shoppers × items) behind the cop_* features.
    `dense` None: dense when the matrices are small (serving's one shopper)."""
    n = table.n_shoppers
    if dense is None:
        dense = n * stats.n_items <= DENSE_MAX_CELLS
    w: sp.csr_matrix | Weights = shopper_weights(table)
    last: sp.csr_matrix | Weights = last_basket_weights(table)
    if not dense:
        w, last = _as_csr(w, n, stats.n_items), _as_csr(last, n, stats.n_items)
    return {
        "cop_basket": _times(w, stats.basket_cooc, n),
        "cop_last_basket": _times(last, stats.basket_cooc, n),
        "cop_shopper": _times(w, stats.shopper_cooc, n),
    }


def candidate_scores(table: StateTable, stats: ItemStats, dense: bool | None = None
                     ) -> dict[str, ScoreMatrix]:
    """Every shoppers × items score matrix the candidates and features read: co-purchase
    (:func:`copurchase_scores`) and shopper-neighbour (``knn_*``) scores."""
    return copurchase_scores(table, stats, dense) | neighbour_scores(
        table, stats.shopper_pool, stats.shopper_pool_by_item, dense)


def _lookup(m: ScoreMatrix, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """m[rows, cols] as a dense vector (0 where not stored). For CSR, by binary search over
    the sorted (row, column) keys: scipy's fancy indexing costs ~5x more on small inputs."""
    if isinstance(m, np.ndarray):
        return m[rows, cols]
    if not len(rows) or not m.nnz:
        return np.zeros(len(rows))
    row_of_entry = np.repeat(np.arange(m.shape[0], dtype=np.int64), np.diff(m.indptr))
    keys = row_of_entry * np.int64(m.shape[1]) + m.indices
    want = rows.astype(np.int64) * np.int64(m.shape[1]) + cols
    pos = np.minimum(np.searchsorted(keys, want), len(keys) - 1)
    return np.where(keys[pos] == want, m.data[pos], 0.0)


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
    decayed = table.decayed_slow_now()
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
    scores: dict[str, ScoreMatrix] | None = None,
) -> np.ndarray:
    """Feature matrix (float32, len(rows) × len(FEATURE_NAMES)) for (shopper row, item).

    ``now`` is the request time per row (epoch seconds; NaN when unknown). Pass ``scores``
    (from :func:`candidate_scores`) to reuse it across calls.
    """
    rows = np.asarray(rows, dtype=np.int64)
    items = np.asarray(items, dtype=np.int64)
    now_arr = np.broadcast_to(np.asarray(now, dtype=np.float64), rows.shape)
    cop = scores if scores is not None else candidate_scores(table, stats)
    it = _history_features(table, rows, items, now_arr)
    ranks = pair_ranks(table)
    n = it["n"]
    if table.categories is not None:
        cat = _history_features(table.categories, rows, stats.item_category[items], now_arr)
    else:
        cat = _history_features(EMPTY_TABLE, np.zeros_like(rows), np.full_like(items, -1),
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
    } | {name: _lookup(cop[name], rows, items) for name in NEIGHBOUR_SCORE_NAMES}
    return np.column_stack([cols[name] for name in FEATURE_NAMES]).astype(np.float32)


def _days_between(start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """(end - start) in days, MISSING where either time is unknown."""
    d = (np.asarray(end, np.float64) - np.asarray(start, np.float64)) / SECONDS_PER_DAY
    return np.where(np.isfinite(d), d, MISSING)
