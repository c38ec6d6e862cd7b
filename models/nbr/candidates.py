"""Candidate items for the ranker: own repeat items, co-purchased items, items similar
shoppers buy, popular items.

Shared by training and serving (it only reads a :class:`StateTable` and
:class:`ItemStats`), so the ranker is always scored on the candidates it learnt on.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from models.features.nbr import ScoreMatrix, StateTable
from models.features.nbr_stats import ItemStats

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CandidateConfig:
    """How many non-repeat candidates to add per shopper.

    Every item the shopper bought before is a candidate (repeat purchases carry most of
    the hits); 50 co-purchase, 20 neighbour and 30 popular items lift the share of target
    items that are candidates at all, at a cost of ~100 rows per shopper.
    """

    n_copurchase: int = 50
    n_popular: int = 30
    n_neighbour: int = 20


def generate_candidates(
    table: StateTable,
    stats: ItemStats,
    cop: dict[str, ScoreMatrix],
    config: CandidateConfig | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(rows, items) of all candidates, sorted by row then item, without duplicates."""
    config = config or CandidateConfig()
    parts_r = [table.pair_row]
    parts_i = [table.pair_item]
    if config.n_copurchase:
        r, i = _top_new(table, cop["cop_basket"] + cop["cop_shopper"],
                               config.n_copurchase)
        parts_r.append(r)
        parts_i.append(i)
    if config.n_neighbour:
        r, i = _top_new(table, cop["knn_wide"], config.n_neighbour)
        parts_r.append(r)
        parts_i.append(i)
    if config.n_popular:
        pop = stats.popular_items(config.n_popular)
        parts_r.append(np.repeat(np.arange(table.n_shoppers), len(pop)))
        parts_i.append(np.tile(pop, table.n_shoppers))
    rows = np.concatenate(parts_r).astype(np.int64)
    items = np.concatenate(parts_i).astype(np.int64)
    key = np.unique(rows * np.int64(1 << 32) + items)
    return key >> 32, key & np.int64((1 << 32) - 1)


def _top_new(
    table: StateTable, scores: ScoreMatrix, n: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per shopper, the n best-scored items they have not bought yet (ties: lower item
    code first)."""
    if isinstance(scores, np.ndarray):
        return _top_new_dense(table, scores, n)
    scores = scores.tocsr()
    row = np.repeat(np.arange(scores.shape[0], dtype=np.int64), np.diff(scores.indptr))
    col, val = scores.indices.astype(np.int64), scores.data
    new = table.pair_index(row, col) < 0
    row, col, val = row[new], col[new], val[new]
    order = np.lexsort((col, -val, row))
    row, col = row[order], col[order]
    first = np.searchsorted(row, row, side="left")
    rank = np.arange(len(row)) - first
    keep = rank < n
    return row[keep], col[keep]


def _top_new_dense(
    table: StateTable, scores: np.ndarray, n: int
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_top_new` for a few shoppers' dense rows (serving): a partition per row
    instead of sorting every scored item, the same items."""
    bounds = np.searchsorted(table.pair_row, np.arange(scores.shape[0] + 1))
    parts_r, parts_i = [], []
    for r in range(scores.shape[0]):
        unbought = scores[r].copy()
        unbought[table.pair_item[bounds[r] : bounds[r + 1]]] = 0.0
        col = np.flatnonzero(unbought)
        val = unbought[col]
        if len(col) > n:
            nth = np.partition(val, len(val) - n)[len(val) - n]
            keep = val > nth
            # Ties at the n-th value fill the rest, lower item codes first (`col` ascends).
            keep[np.flatnonzero(val == nth)[: n - int(keep.sum())]] = True
            col = col[keep]
        parts_r.append(np.full(len(col), r, dtype=np.int64))
        parts_i.append(col.astype(np.int64))
    if not parts_r:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(parts_r), np.concatenate(parts_i)
