"""Shopper-neighbour scores: what shoppers with a similar repertoire buy (user KNN).

The one implementation behind the ranker's ``knn_*`` features, for training and serving.
A shopper's vector is their slow-decayed purchase counts as of now (TIFU-KNN's idea: a
repertoire where recent baskets weigh more), L2-normalised. The *pool* is the same vector
of every history shopper, built once with the item statistics and shipped inside them (rows
only, no shopper ids). A shopper's score for an item is the similarity-weighted mean of
their nearest pool vectors at that item: TIFU-KNN's neighbour half, as a feature the trees
can weigh against the shopper's own history, which they see directly.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from models.features.nbr_state import StateTable
from models.features.sparse_rows import (
    DENSE_MAX_CELLS,
    ScoreMatrix,
    row_pointers,
    weighted_row_sums,
)

# Neighbour counts of the two scores: a close circle and a wide one. Tuned TIFU-KNN picks
# anywhere from 100 to 2,000 neighbours depending on the data; the trees get both scales.
NEAR_NEIGHBOURS = 50
WIDE_NEIGHBOURS = 500
# Items kept per shopper and score (the rest read 0): bounds memory in training, where a
# block of shoppers times every item would otherwise be dense.
KEPT_ITEMS = 300
# A pool vector this similar is the shopper themself (their own history is in the pool).
SELF_SIMILARITY = 1.0 - 1e-4
# Bounds the pool, and so the bundle and the per-request work (~0.6 ms per request with the
# 10,000 shoppers of a large store; `benchmarks/ranking.py`).
MAX_POOL_SHOPPERS = 10_000
# Shoppers whose similarities to the whole pool are held at once (dense block × pool).
SIMILARITY_BLOCK = 256
NEIGHBOUR_SCORE_NAMES = ("knn_near", "knn_wide")


def repertoire_weights(table: StateTable) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(row, item, weight): slow-decayed purchase counts as of now, each row of unit
    length, in (row, item) order."""
    w = table.decayed_slow_now()
    norms = np.sqrt(np.bincount(table.pair_row, w * w, minlength=table.n_shoppers))
    return table.pair_row, table.pair_item, w / np.maximum(norms, 1e-12)[table.pair_row]


def repertoire_vectors(table: StateTable, n_items: int) -> sp.csr_matrix:
    """Shoppers × items: :func:`repertoire_weights` as CSR."""
    rows, items, w = repertoire_weights(table)
    return sp.csr_matrix((w.astype(np.float32), items, row_pointers(rows, table.n_shoppers)),
                         shape=(table.n_shoppers, n_items))


def shopper_pool(table: StateTable, n_items: int) -> sp.csr_matrix:
    """The pool: every shopper with history (the most frequent ones beyond the cap)."""
    active = np.flatnonzero(table.n_baskets > 0)
    if len(active) > MAX_POOL_SHOPPERS:
        order = np.lexsort((active, -table.n_baskets[active]))
        active = np.sort(active[order[:MAX_POOL_SHOPPERS]])
    return repertoire_vectors(table, n_items)[active]


def neighbour_scores(table: StateTable, pool: sp.csr_matrix,
                     pool_by_item: sp.csr_matrix | None = None, dense: bool | None = None
                     ) -> dict[str, ScoreMatrix]:
    """Shoppers × items neighbour scores (``NEIGHBOUR_SCORE_NAMES``).

    ``pool_by_item``: the pool transposed to CSR, when the caller keeps one. ``dense``
    None: dense arrays for a few shoppers (serving), else CSR with sorted indices; the
    same numbers either way.
    """
    n_items = pool.shape[1]
    if dense is None:
        dense = table.n_shoppers * n_items <= DENSE_MAX_CELLS
    pool_t = pool_by_item if pool_by_item is not None else pool.T.tocsr()
    rows, items, w = repertoire_weights(table)
    bounds = row_pointers(rows, table.n_shoppers)
    if dense:
        out = {name: np.zeros((table.n_shoppers, n_items)) for name in NEIGHBOUR_SCORE_NAMES}
        for r in range(table.n_shoppers):
            span = slice(bounds[r], bounds[r + 1])
            sims = _gathered_sum(pool_t, items[span], w[span], pool.shape[0])
            for name, circle in zip(NEIGHBOUR_SCORE_NAMES, _circles(sims), strict=True):
                out[name][r] = _gathered_sum(pool, circle, _normalised(sims[circle]), n_items)
                _keep_top_dense(out[name][r : r + 1], KEPT_ITEMS)
        return out
    parts: dict[str, list[ScoreMatrix]] = {name: [] for name in NEIGHBOUR_SCORE_NAMES}
    for lo in range(0, table.n_shoppers, SIMILARITY_BLOCK):
        hi = min(lo + SIMILARITY_BLOCK, table.n_shoppers)
        span = slice(bounds[lo], bounds[hi])
        sims = weighted_row_sums(rows[span] - lo, items[span], w[span], pool_t, hi - lo)
        circles = [_circles(row) for row in sims]
        for c, name in enumerate(NEIGHBOUR_SCORE_NAMES):
            picks = [circle[c] for circle in circles]
            weight = [_normalised(row[p]) for row, p in zip(sims, picks, strict=True)]
            chosen = sp.csr_matrix(
                (np.concatenate(weight),
                 (np.repeat(np.arange(hi - lo), [len(p) for p in picks]), np.concatenate(picks))),
                shape=(hi - lo, pool.shape[0]))
            parts[name].append(_keep_top(chosen @ pool, KEPT_ITEMS))
    return {name: _stack(blocks, n_items) for name, blocks in parts.items()}


def _gathered_sum(m: sp.csr_matrix, picks: np.ndarray, weights: np.ndarray, n_cols: int
                  ) -> np.ndarray:
    """Σ weights · m[picks] as one dense row (serving's one shopper). What
    `sparse_rows.weighted_row_sums` computes, by scipy's row copy: faster for the
    pool's gathers (hundreds of rows), ~2x slower for the co-purchase ones (measured with
    `benchmarks/ranking.py`), so each path keeps its own."""
    picked = m[picks]
    return np.bincount(picked.indices, picked.data * np.repeat(weights, np.diff(picked.indptr)),
                       minlength=n_cols)


def _circles(sims: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One shopper's near and wide circles (pool rows, in ``NEIGHBOUR_SCORE_NAMES``'
    order) from their similarity to every pool row; their own row is set to 0 first.
    Training and serving both pick through here, one shopper at a time, so ties fall
    alike."""
    sims[sims >= SELF_SIMILARITY] = 0.0
    # The near circle is found inside the wide one: one pass over the whole pool.
    wide = _nearest(sims, np.arange(len(sims)), WIDE_NEIGHBOURS)
    return _nearest(sims[wide], wide, NEAR_NEIGHBOURS), wide


def _nearest(sims: np.ndarray, candidates: np.ndarray, k: int) -> np.ndarray:
    """The k candidates (one per entry of ``sims``) most similar."""
    if k >= len(sims):
        return candidates
    return candidates[np.argpartition(-sims, k - 1)[:k]]


def _normalised(weight: np.ndarray) -> np.ndarray:
    return weight / max(float(weight.sum()), 1e-12)


def _threshold(values: np.ndarray, n: int) -> float:
    """The n-th largest of a row's values (0 when it has at most n)."""
    if len(values) <= n:
        return 0.0
    return float(np.partition(values, len(values) - n)[len(values) - n])


def _keep_top_dense(m: np.ndarray, n: int) -> np.ndarray:
    """:func:`_keep_top` for dense rows: the rest set to 0."""
    for r in range(m.shape[0]):
        row = m[r]
        row[row < _threshold(row[row > 0], n)] = 0.0
    return m


def _keep_top(m: sp.csr_matrix, n: int) -> sp.csr_matrix:
    """Each row's entries at or above its n-th largest value, CSR with sorted indices.

    Depends on the row alone, so a shopper keeps the same entries scored alone (serving)
    or in a block (training); a tie at the threshold keeps every tied entry.
    """
    m = m.tocsr()  # a product's output: no duplicates, indices unsorted
    m.data[m.data < 0] = 0.0
    lengths = np.diff(m.indptr)
    threshold = np.zeros(m.shape[0], dtype=np.float64)
    # One partition per long row: a few hundred rows a block, ~30 µs each, where sorting
    # every stored entry of the block cost ~10x more.
    for r in np.flatnonzero(lengths > n):
        row = m.data[m.indptr[r] : m.indptr[r + 1]]
        threshold[r] = _threshold(row[row > 0], n)
    rows = np.repeat(np.arange(m.shape[0]), lengths)
    keep = (m.data >= threshold[rows]) & (m.data > 0)
    out = sp.csr_matrix((m.data[keep].astype(np.float32), m.indices[keep],
                         row_pointers(rows[keep], m.shape[0])), shape=m.shape)
    out.sort_indices()
    return out


def _stack(blocks: list[sp.csr_matrix], n_items: int) -> sp.csr_matrix:
    if not blocks:
        return sp.csr_matrix((0, n_items), dtype=np.float32)
    out = sp.vstack(blocks, format="csr")
    out.sort_indices()
    return out
