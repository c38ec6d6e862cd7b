"""TIFU-KNN (Hu, He, Gao, Zhang; SIGIR 2020): temporal item frequencies + user-kNN.

A user's history baskets (binary item vectors, oldest first) become one vector:

1. within-basket decay: basket j of n gets weight ``r_b ** (n - 1 - j)`` — the decay
   counts baskets from the end of the whole history, as in the authors' code;
2. the n baskets are cut into ``n_groups`` consecutive groups of near-equal size (the
   later groups take the extra basket when n is not a multiple); with fewer baskets
   than groups every basket is its own group. Each group vector is the mean of its
   (decayed) basket vectors;
3. between-group decay: group g gets ``r_g ** (n_groups - 1 - g)`` (again the authors'
   exponent, relative to the configured number of groups), and the user vector is the
   sum of weighted group vectors divided by the number of groups actually formed.

Prediction for user u: ``alpha * v_u + (1 - alpha) * mean(v of the k nearest users)``,
neighbours by Euclidean distance between user vectors, searched among the users the
model was fitted on (the training and validation users of the split), never the user
itself.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from models.nbr.base import FitData
from models.nbr.matrices import BasketMatrix, top_k_dense

logger = logging.getLogger(__name__)

# Query rows per dense block when scoring: keeps a block under ~100 MB for 12k items.
QUERY_CHUNK = 512


@dataclass(frozen=True)
class TifuParams:
    """The published defaults for Ta-Feng: (300, .9, .7, .7, 7)."""

    n_neighbors: int = 300
    within_decay: float = 0.9
    group_decay: float = 0.7
    alpha: float = 0.7
    n_groups: int = 7


def basket_weights(
    index: np.ndarray, n_baskets: np.ndarray, params: TifuParams
) -> np.ndarray:
    """Weight of each history basket in its user's vector (vectorised steps 1–3).

    ``index`` is the basket's position in its user's history, ``n_baskets`` the length
    of that user's history (both per basket).
    """
    j = index.astype(np.int64)
    n = n_baskets.astype(np.int64)
    g_cfg = params.n_groups
    within = params.within_decay ** (n - 1 - j).astype(np.float64)
    few = n < g_cfg
    base = np.maximum(n // g_cfg, 1)
    extra = np.where(few, 0, n % g_cfg)
    n_plain = (g_cfg - extra) * base  # baskets in the groups without an extra basket
    group = np.where(j < n_plain, j // base, (g_cfg - extra) + (j - n_plain) // (base + 1))
    size = np.where(j < n_plain, base, base + 1)
    group = np.where(few, j, group)
    size = np.where(few, 1, size)
    real_groups = np.where(few, n, g_cfg)
    between = params.group_decay ** (g_cfg - 1 - group).astype(np.float64)
    return within * between / size / real_groups


def user_vectors(bm: BasketMatrix, n_users: int, params: TifuParams) -> sp.csr_matrix:
    """Users × items TIFU vectors from a history basket matrix (float64 CSR)."""
    w = basket_weights(bm.index, bm.n_baskets[bm.user], params)
    mix = sp.csr_matrix((w, (bm.user, np.arange(len(w)))), shape=(n_users, len(w)))
    return (mix @ bm.matrix.astype(np.float64)).tocsr()


def nearest_neighbours(
    query: sp.csr_matrix, query_ids: np.ndarray, pool: sp.csr_matrix, pool_ids: np.ndarray,
    k: int,
) -> np.ndarray:
    """Indices into ``pool`` of the k nearest (Euclidean) rows, excluding the query's own id."""
    k = min(k, pool.shape[0] - 1) if np.isin(query_ids, pool_ids).any() else min(
        k, pool.shape[0]
    )
    pool_sq = np.asarray(pool.multiply(pool).sum(axis=1)).ravel()
    out = np.empty((query.shape[0], k), dtype=np.int64)
    pool_t = pool.T.tocsc()
    for lo in range(0, query.shape[0], QUERY_CHUNK):
        q = query[lo : lo + QUERY_CHUNK]
        q_sq = np.asarray(q.multiply(q).sum(axis=1)).ravel()
        dist = q_sq[:, None] + pool_sq[None, :] - 2.0 * (q @ pool_t).toarray()
        dist[query_ids[lo : lo + QUERY_CHUNK, None] == pool_ids[None, :]] = np.inf
        part = np.argpartition(dist, k - 1, axis=1)[:, :k]
        out[lo : lo + QUERY_CHUNK] = part
    return out


class TifuKnn:
    """TIFU-KNN over the split's training and validation users."""

    name = "TIFU-KNN"

    def __init__(self, params: TifuParams | None = None) -> None:
        self.params = params or TifuParams()

    def fit(self, data: FitData) -> None:
        task = data.task
        self._vectors = user_vectors(task.history_baskets, task.n_users, self.params)
        self._pool_ids = np.sort(np.concatenate([data.train_users, data.val_users]))
        self._pool = self._vectors[self._pool_ids]

    def scores(self, users: np.ndarray) -> sp.csr_matrix:
        """Users × items TIFU-KNN scores (sparse)."""
        users = np.asarray(users, dtype=np.int64)
        q = self._vectors[users]
        nbr = nearest_neighbours(q, users, self._pool, self._pool_ids, self.params.n_neighbors)
        k = nbr.shape[1]
        select = sp.csr_matrix(
            (np.full(nbr.size, 1.0 / k), (np.repeat(np.arange(len(users)), k), nbr.ravel())),
            shape=(len(users), self._pool.shape[0]),
        )
        a = self.params.alpha
        return (a * q + (1.0 - a) * (select @ self._pool)).tocsr()

    def recommend(self, users: np.ndarray, k: int) -> np.ndarray:
        out = np.full((len(users), k), -1, dtype=np.int64)
        for lo in range(0, len(users), QUERY_CHUNK):
            s = self.scores(users[lo : lo + QUERY_CHUNK])
            out[lo : lo + QUERY_CHUNK] = top_k_dense(s.toarray(), k)
        return out
