"""Top-K metrics exactly as in the Reality Check paper's code (see the Ta-Feng README).

- Recall@K = |top-K ∩ truth| / |truth|
- NDCG@K = DCG@K / IDCG with binary gains, IDCG summed over **all** truth items
  (not min(K, |truth|)), so a user with more than K truth items can never reach 1.
- PHR@K = share of users with at least one hit.
- Repeat / explore recall@K: recall restricted to the truth items the user has / has
  not bought before, averaged over the users that have such items.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

DEFAULT_KS = (10, 20)


def _pair_keys(rows: np.ndarray, cols: np.ndarray, n_cols: int) -> np.ndarray:
    return rows.astype(np.int64) * n_cols + cols.astype(np.int64)


def hit_matrix(recs: np.ndarray, truth: sp.csr_matrix) -> np.ndarray:
    """Boolean (users × K): is the recommended item (−1 = none) in the user's truth row."""
    truth = truth.tocsr()
    n_cols = truth.shape[1]
    coo = truth.tocoo()
    truth_keys = np.sort(_pair_keys(coo.row, coo.col, n_cols))
    rows = np.repeat(np.arange(recs.shape[0]), recs.shape[1])
    keys = _pair_keys(rows, np.maximum(recs.reshape(-1), 0), n_cols)
    hits = np.isin(keys, truth_keys) & (recs.reshape(-1) >= 0)
    return hits.reshape(recs.shape)


def per_user_metrics(
    recs: np.ndarray, truth: sp.csr_matrix, k: int
) -> dict[str, np.ndarray]:
    """Recall, NDCG and hit (0/1) at K for each row; rows with an empty truth give NaN."""
    hits = hit_matrix(recs[:, :k], truth)
    n_truth = np.diff(truth.tocsr().indptr).astype(np.float64)
    discounts = 1.0 / np.log2(np.arange(k) + 2.0)
    dcg = hits @ discounts
    max_truth = int(n_truth.max()) if len(n_truth) else 0
    ideal_cum = np.concatenate([[0.0], np.cumsum(1.0 / np.log2(np.arange(max_truth) + 2.0))])
    idcg = ideal_cum[n_truth.astype(np.int64)]
    with np.errstate(invalid="ignore", divide="ignore"):
        n_hits = hits.sum(axis=1).astype(np.float64)
        recall = np.where(n_truth > 0, n_hits / n_truth, np.nan)
        ndcg = np.where(n_truth > 0, dcg / idcg, np.nan)
        phr = np.where(n_truth > 0, (n_hits > 0).astype(np.float64), np.nan)
    return {"recall": recall, "ndcg": ndcg, "phr": phr}


def evaluate_recommendations(
    recs: np.ndarray,
    truth: sp.csr_matrix,
    history: sp.csr_matrix,
    ks: tuple[int, ...] = DEFAULT_KS,
) -> dict[str, float]:
    """Mean metrics over the rows of ``recs`` (one row per evaluated user).

    ``truth`` and ``history`` are aligned with ``recs`` row for row (binary users × items:
    target basket, items bought before).
    """
    truth = truth.tocsr().astype(np.float32)
    seen = history.tocsr().astype(bool).astype(np.float32)
    truth_rep = truth.multiply(seen).tocsr()
    truth_rep.eliminate_zeros()
    truth_exp = (truth - truth_rep).tocsr()
    truth_exp.eliminate_zeros()
    out: dict[str, float] = {"users": float(truth.shape[0])}
    for k in ks:
        m = per_user_metrics(recs, truth, k)
        out[f"recall@{k}"] = float(np.nanmean(m["recall"]))
        out[f"ndcg@{k}"] = float(np.nanmean(m["ndcg"]))
        out[f"phr@{k}"] = float(np.nanmean(m["phr"]))
        for part, t in (("repeat", truth_rep), ("explore", truth_exp)):
            r = per_user_metrics(recs, t, k)["recall"]
            out[f"{part}_recall@{k}"] = float(np.nanmean(r)) if np.isfinite(r).any() else 0.0
    return out
