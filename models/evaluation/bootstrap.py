"""Paired, user-clustered bootstrap: the interval of "method A minus method B".

Both methods are scored on the same test users of each split, so the difference is
paired per user. The five splits share users (a shopper who is a test user of split 1
can be one of split 3), so resampling each split on its own would treat those repeats
as independent evidence and give too narrow an interval for the mean over splits.
One resample therefore draws **users** with replacement from every user who is a test
user of any split; a drawn user brings their results in every split where they are a
test user (weighted by how often they were drawn). The statistic is the one the tables
report: the mean over splits of each split's mean difference. The percentile interval
of the resampled statistic is the interval of the difference; the relative difference
(mean A / mean B − 1) is resampled the same way. A single split reduces to the plain
paired bootstrap over its test users.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

logger = logging.getLogger(__name__)

N_RESAMPLES = 1_000
BOOTSTRAP_SEED = 0
CONFIDENCE = 0.95


def _clustered(
    users: Sequence[np.ndarray], a: Sequence[np.ndarray], b: Sequence[np.ndarray],
    n_resamples: int, rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Resampled mean-over-splits of A and of B (n_resamples each), users as clusters."""
    pool, inverse = np.unique(np.concatenate(users), return_inverse=True)
    positions = np.split(inverse, np.cumsum([len(u) for u in users])[:-1])
    a_means = np.zeros(n_resamples)
    b_means = np.zeros(n_resamples)
    # Counts of each pooled user per resample, in blocks to bound memory.
    block = max(1, 2_000_000 // max(len(pool), 1))
    for lo in range(0, n_resamples, block):
        n = min(block, n_resamples - lo)
        draws = rng.integers(0, len(pool), size=(n, len(pool)))
        flat = (draws + len(pool) * np.arange(n)[:, None]).ravel()
        counts = np.bincount(flat, minlength=n * len(pool)).reshape(n, len(pool))
        counts = counts.astype(np.float64)
        for pos, xa, xb in zip(positions, a, b, strict=True):
            w = counts[:, pos]
            total = w.sum(axis=1)
            total[total == 0] = np.nan  # a resample without this split's users: skipped
            a_means[lo : lo + n] += (w @ xa) / total / len(users)
            b_means[lo : lo + n] += (w @ xb) / total / len(users)
    return a_means, b_means


def paired_bootstrap(
    a_per_split: Sequence[np.ndarray],
    b_per_split: Sequence[np.ndarray],
    n_resamples: int = N_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
    confidence: float = CONFIDENCE,
    users_per_split: Sequence[np.ndarray] | None = None,
) -> dict[str, object]:
    """Observed mean-over-splits difference A − B and its percentile interval.

    ``a_per_split[s][j]`` and ``b_per_split[s][j]`` are the two methods' metric for the
    same user ``users_per_split[s][j]`` of split s (without user ids every entry is a
    user of its own); users where either is NaN (empty target) are left out. The overall
    interval resamples users across splits, each split's interval its own users.
    """
    rng = np.random.default_rng(seed)
    lo_q, hi_q = 100 * (1 - confidence) / 2, 100 * (1 + confidence) / 2
    if users_per_split is None:
        offsets = np.cumsum([0] + [len(x) for x in a_per_split])
        users_per_split = [np.arange(o, o + len(x)) for o, x in zip(offsets, a_per_split,
                                                                      strict=False)]
    users, a_s, b_s = [], [], []
    for u, a, b in zip(users_per_split, a_per_split, b_per_split, strict=True):
        a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
        ok = np.isfinite(a) & np.isfinite(b)
        users.append(np.asarray(u)[ok])
        a_s.append(a[ok])
        b_s.append(b[ok])
    per_split = []
    for u, a, b in zip(users, a_s, b_s, strict=True):
        ra, rb = _clustered([u], [a], [b], n_resamples, rng)
        d = ra - rb
        per_split.append({
            "users": len(a),
            "difference": float(a.mean() - b.mean()),
            "ci": [float(np.nanpercentile(d, lo_q)), float(np.nanpercentile(d, hi_q))],
        })
    # With one split its resample is the overall one (the same draws as the plain paired
    # bootstrap, so a caller's seed keeps giving the same interval).
    a_means, b_means = (ra, rb) if len(users) == 1 else _clustered(
        users, a_s, b_s, n_resamples, rng)
    diffs = a_means - b_means
    obs_a = float(np.mean([x.mean() for x in a_s]))
    obs_b = float(np.mean([x.mean() for x in b_s]))
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = a_means / b_means - 1.0
    return {
        "mean_a": obs_a,
        "mean_b": obs_b,
        "difference": float(np.mean([s["difference"] for s in per_split])),
        "ci": [float(np.nanpercentile(diffs, lo_q)), float(np.nanpercentile(diffs, hi_q))],
        "relative": obs_a / obs_b - 1.0 if obs_b else float("nan"),
        "relative_ci": [float(np.nanpercentile(rel, lo_q)), float(np.nanpercentile(rel, hi_q))],
        "confidence": confidence,
        "n_resamples": n_resamples,
        "seed": seed,
        "resampling": "users, clustered across splits",
        "distinct_users": len(np.unique(np.concatenate(users))) if users else 0,
        "per_split": per_split,
    }
