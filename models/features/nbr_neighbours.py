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
# Bounds the pool, and so the bundle and the per-request work (~0.7 ms per request with the
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
    parts: dict[str, list[ScoreMatrix]] = {name: [] for name in NEIGHBOUR_SCORE_NAMES}
    for lo in range(0, table.n_shoppers, SIMILARITY_BLOCK):
        hi = min(lo + SIMILARITY_BLOCK, table.n_shoppers)
        span = slice(bounds[lo], bounds[hi])
        sims = weighted_row_sums(rows[span] - lo, items[span], w[span], pool_t, hi - lo)
        sims[sims >= SELF_SIMILARITY] = 0.0
        # The near circle is found inside the wide one: one pass over the whole pool.
        wide = _nearest(sims, np.arange(sims.shape[1]), WIDE_NEIGHBOURS)
        near = _nearest(np.take_along_axis(sims, wide, axis=1), wide, NEAR_NEIGHBOURS)
        for name, nearest in (("knn_near", near), ("knn_wide", wide)):
            weight = np.take_along_axis(sims, nearest, axis=1)
            parts[name].append(_weighted_mean(weight, nearest, pool, dense))
    if dense:
        return {name: np.vstack(blocks) if blocks else np.zeros((0, n_items))
                for name, blocks in parts.items()}
    return {name: _stack(blocks, n_items) for name, blocks in parts.items()}


def _nearest(sims: np.ndarray, candidates: np.ndarray, k: int) -> np.ndarray:
    """Per row, the k candidates (pool rows; one per column of ``sims``) most similar."""
    if k >= sims.shape[1]:
        return np.broadcast_to(candidates, sims.shape)
    best = np.argpartition(-sims, k - 1, axis=1)[:, :k]
    return np.take_along_axis(np.broadcast_to(candidates, sims.shape), best, axis=1)


def _weighted_mean(weight: np.ndarray, nearest: np.ndarray, pool: sp.csr_matrix,
                   dense: bool) -> ScoreMatrix:
    """Per row: Σ sim·pool[v] / Σ sim over its nearest pool rows, top KEPT_ITEMS kept."""
    n, k = nearest.shape
    weight = (weight / np.maximum(weight.sum(axis=1, keepdims=True), 1e-12)).ravel()
    rows = np.repeat(np.arange(n), k)
    if dense:
        return _keep_top_dense(weighted_row_sums(rows, nearest.ravel(), weight, pool, n),
                               KEPT_ITEMS)
    picks = sp.csr_matrix((weight, (rows, nearest.ravel())), shape=(n, pool.shape[0]))
    return _keep_top(picks @ pool, KEPT_ITEMS)


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
