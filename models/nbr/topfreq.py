"""Frequency baselines from the Reality Check paper: G-, P- and GP-TopFreq."""

from __future__ import annotations

import logging

import numpy as np
import scipy.sparse as sp

from models.nbr.base import FitData
from models.nbr.matrices import top_k_sparse_rows

logger = logging.getLogger(__name__)

# Recency only breaks ties between equal personal counts: the bonus stays below one
# basket so it can never outrank a higher count.
RECENCY_TIE_BREAK = 0.5


def global_popularity(data: FitData) -> np.ndarray:
    """Number of history baskets (all users) containing each item."""
    return np.asarray(data.task.history_baskets.matrix.sum(axis=0)).ravel()


class GTopFreq:
    """The K items in most history baskets, the same for everyone."""

    name = "G-TopFreq"

    def fit(self, data: FitData) -> None:
        pop = global_popularity(data)
        self._ranking = np.lexsort((np.arange(len(pop)), -pop))

    def recommend(self, users: np.ndarray, k: int) -> np.ndarray:
        return np.tile(self._ranking[:k], (len(users), 1)).astype(np.int64)


def personal_scores(data: FitData) -> sp.csr_matrix:
    """Users × items: basket count plus a sub-unit bonus for the most recently bought."""
    task = data.task
    bm = task.history_baskets
    # Last basket index in which the user bought the item, via max over basket rows.
    coo = bm.matrix.tocoo()
    rel = (bm.index[coo.row] + 1) / (bm.n_baskets[bm.user[coo.row]] + 1)
    last_max = _max_duplicates(
        sp.coo_matrix((rel, (bm.user[coo.row], coo.col)), shape=task.history_counts.shape)
    )
    return (task.history_counts + RECENCY_TIE_BREAK * last_max).tocsr()


def _max_duplicates(m: sp.coo_matrix) -> sp.csr_matrix:
    key = m.row.astype(np.int64) * m.shape[1] + m.col
    order = np.lexsort((m.data, key))
    key_s = key[order]
    last_of_key = np.append(key_s[1:] != key_s[:-1], True)
    sel = order[last_of_key]
    return sp.csr_matrix((m.data[sel], (m.row[sel], m.col[sel])), shape=m.shape)


class PTopFreq:
    """The user's own most frequently bought items (ties: most recent first)."""

    name = "P-TopFreq"

    def fit(self, data: FitData) -> None:
        self._scores = personal_scores(data)

    def recommend(self, users: np.ndarray, k: int) -> np.ndarray:
        return top_k_sparse_rows(self._scores[users], k)


class GPTopFreq:
    """P-TopFreq, with the remaining slots filled by G-TopFreq."""

    name = "GP-TopFreq"

    def fit(self, data: FitData) -> None:
        self._p = PTopFreq()
        self._p.fit(data)
        self._g = GTopFreq()
        self._g.fit(data)

    def recommend(self, users: np.ndarray, k: int) -> np.ndarray:
        return fill_with_global(self._p.recommend(users, k), self._g._ranking)


def fill_with_global(recs: np.ndarray, ranking: np.ndarray) -> np.ndarray:
    """Replace −1 slots with the best globally ranked items not already recommended."""
    out = recs.copy()
    k = recs.shape[1]
    head = ranking[: 2 * k]
    for r in np.flatnonzero((out < 0).any(axis=1)):
        have = out[r][out[r] >= 0]
        fill = head[~np.isin(head, have)][: k - len(have)]
        out[r] = np.concatenate([have, fill, np.full(k - len(have) - len(fill), -1)])
    return out
