"""UP-CF@r (Faggioli, Polato, Aiolli; RecSys 2020): recency-aware user popularity + user-CF.

Our reading of the paper, with its three parameters:

1. **User popularity with recency window r** (UP@r): for user v with B_v history
   baskets, ``up_v(i) = (baskets among v's last min(r, B_v) that contain i) / min(r, B_v)``;
   ``r = None`` means the whole history (r = ∞).
2. **Asymmetric cosine** between binary purchase profiles (every item ever bought):
   ``sim(u, v) = |P_u ∩ P_v| / (|P_u|^alpha · |P_v|^(1 - alpha))`` — alpha = 0.5 is the
   plain cosine; the value never exceeds 1 and ``sim(u, u) = 1``.
3. **Locality q**: neighbours weigh ``sim(u, v) ** q`` (large q keeps only the closest).
4. Optionally only the ``n_neighbors`` most similar pool users count (None = all, the
   paper's sum); a search dimension for tuning, not part of the paper.

Score: ``s_u(i) = up_u(i) + sum over pool users v != u of sim(u, v)^q · up_v(i)`` — the sum
of the paper runs over all users, the user itself included with similarity 1, so a
shopper's own recent items always count in full. The pool is the split's training and
validation users (as for TIFU-KNN); by default no top-k cut-off, q does the localisation.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from models.nbr.base import FitData
from models.nbr.matrices import BasketMatrix, top_k_dense

logger = logging.getLogger(__name__)

# Query rows per dense block: a block is rows × pool users and rows × items (float64),
# ~50 MB each for Ta-Feng-sized data.
QUERY_CHUNK = 512


@dataclass(frozen=True)
class UpcfParams:
    """r (None = whole history), alpha (asymmetry), q (locality), neighbours (None = all)."""

    recency: int | None = None
    alpha: float = 0.5
    q: float = 1.0
    n_neighbors: int | None = None


def user_popularity(bm: BasketMatrix, n_users: int, recency: int | None) -> sp.csr_matrix:
    """Users × items UP@r: share of the user's last min(r, B_u) baskets holding the item."""
    n = bm.n_baskets[bm.user].astype(np.int64)
    window = n if recency is None else np.minimum(n, int(recency))
    keep = bm.index >= n - window
    rows = np.flatnonzero(keep)
    mix = sp.csr_matrix(
        (1.0 / window[keep], (bm.user[keep], rows)), shape=(n_users, bm.matrix.shape[0])
    )
    return (mix @ bm.matrix.astype(np.float64)).tocsr()


def asymmetric_cosine(
    query: sp.csr_matrix, pool: sp.csr_matrix, alpha: float
) -> np.ndarray:
    """Dense query × pool asymmetric cosine of binary profiles (0 where a profile is empty)."""
    overlap = (query @ pool.T).toarray()
    q_size = np.asarray(query.sum(axis=1), dtype=np.float64).ravel()
    p_size = np.asarray(pool.sum(axis=1), dtype=np.float64).ravel()
    den = np.power(q_size, alpha)[:, None] * np.power(p_size, 1.0 - alpha)[None, :]
    with np.errstate(invalid="ignore", divide="ignore"):
        sim = np.where(den > 0, overlap / np.where(den > 0, den, 1.0), 0.0)
    return sim


class UpCf:
    """UP-CF@r over the split's training and validation users (see the module docstring)."""

    name = "UP-CF@r"

    def __init__(self, params: UpcfParams | None = None) -> None:
        self.params = params or UpcfParams()

    def fit(self, data: FitData) -> None:
        task = data.task
        self._pop = user_popularity(task.history_baskets, task.n_users, self.params.recency)
        profile = task.history_counts.tocsr().astype(np.float64)
        profile.data[:] = 1.0
        self._profile = profile
        self._pool_ids = np.sort(np.concatenate([data.train_users, data.val_users]))
        self._pool_profile = profile[self._pool_ids]
        self._pool_pop = self._pop[self._pool_ids]

    def scores(self, users: np.ndarray) -> np.ndarray:
        """Dense users × items UP-CF@r scores."""
        users = np.asarray(users, dtype=np.int64)
        p = self.params
        sim = asymmetric_cosine(self._profile[users], self._pool_profile, p.alpha)
        sim[users[:, None] == self._pool_ids[None, :]] = 0.0  # self counts once, below
        weights = np.power(sim, p.q)
        k = p.n_neighbors
        if k is not None and k < weights.shape[1]:
            # Keep each row's k largest weights (ties at the cut may keep a few more).
            cut = np.partition(weights, -k, axis=1)[:, -k][:, None]
            weights = np.where(weights >= cut, weights, 0.0)
        return self._pop[users].toarray() + np.asarray(self._pool_pop.T @ weights.T).T

    def recommend(self, users: np.ndarray, k: int) -> np.ndarray:
        users = np.asarray(users, dtype=np.int64)
        out = np.full((len(users), k), -1, dtype=np.int64)
        for lo in range(0, len(users), QUERY_CHUNK):
            out[lo : lo + QUERY_CHUNK] = top_k_dense(self.scores(users[lo : lo + QUERY_CHUNK]), k)
        return out
