"""Sparse views of basket histories shared by the baselines, TIFU-KNN and the ranker."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from models.datasets.base import BasketDataset

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class BasketMatrix:
    """Binary baskets × items matrix with each basket's owner and index within its user."""

    matrix: sp.csr_matrix
    user: np.ndarray  # int32, owner of each basket row
    index: np.ndarray  # int32, basket index within the user (0 = oldest)
    ts: np.ndarray  # float64, the basket's time (NaN when the data has none)
    n_baskets: np.ndarray  # int64 per user code: how many baskets that user has


def basket_matrix(ds: BasketDataset) -> BasketMatrix:
    """One binary row per basket (an item bought twice in a basket counts once)."""
    starts = ds.basket_starts()
    n_b = len(starts) - 1
    row = np.repeat(np.arange(n_b), np.diff(starts))
    mat = sp.csr_matrix(
        (np.ones(ds.n_rows, dtype=np.float32), (row, ds.item)), shape=(n_b, ds.n_items)
    )
    mat.sum_duplicates()
    mat.data[:] = 1.0
    first = starts[:-1]
    return BasketMatrix(
        matrix=mat,
        user=ds.user[first].astype(np.int32),
        index=ds.basket[first].astype(np.int32),
        ts=ds.ts[first].astype(np.float64),
        n_baskets=ds.baskets_per_user(),
    )


def user_item_counts(bm: BasketMatrix, n_users: int) -> sp.csr_matrix:
    """Users × items: in how many of the user's baskets each item appears (float32)."""
    owner = sp.csr_matrix(
        (np.ones(len(bm.user), dtype=np.float32), (bm.user, np.arange(len(bm.user)))),
        shape=(n_users, len(bm.user)),
    )
    return (owner @ bm.matrix).tocsr()


def rows_as_sets(mat: sp.csr_matrix, rows: np.ndarray) -> sp.csr_matrix:
    """The chosen rows of a sparse matrix, binarised."""
    out = mat[rows].tocsr()
    out.data[:] = 1.0
    return out


def top_k_dense(scores: np.ndarray, k: int, min_score: float = 0.0) -> np.ndarray:
    """Top-k column indices per row by score, best first; -1 where score <= min_score.

    Ties are broken by the lower item code so results are deterministic.
    """
    n_rows, n_cols = scores.shape
    k_eff = min(k, n_cols)
    part = np.argpartition(-scores, k_eff - 1, axis=1)[:, :k_eff] if k_eff < n_cols else (
        np.tile(np.arange(n_cols), (n_rows, 1))
    )
    part_scores = np.take_along_axis(scores, part, axis=1)
    order = np.lexsort((part, -part_scores), axis=1)
    top = np.take_along_axis(part, order, axis=1)
    top_scores = np.take_along_axis(part_scores, order, axis=1)
    top = np.where(top_scores > min_score, top, -1)
    if k_eff < k:
        top = np.hstack([top, np.full((n_rows, k - k_eff), -1, dtype=top.dtype)])
    return top.astype(np.int64)


def top_k_sparse_rows(mat: sp.csr_matrix, k: int, chunk: int = 1024) -> np.ndarray:
    """:func:`top_k_dense` applied chunk-wise to a sparse score matrix."""
    out = np.full((mat.shape[0], k), -1, dtype=np.int64)
    for lo in range(0, mat.shape[0], chunk):
        out[lo : lo + chunk] = top_k_dense(mat[lo : lo + chunk].toarray(), k)
    return out
