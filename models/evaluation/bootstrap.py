"""Paired bootstrap over test users: the interval of "method A minus method B".

Both methods are scored on the same test users of each split, so the difference is
paired per user. One resample draws each split's test users with replacement
(independently per split, the same draw for A and B) and takes the mean over splits of
the per-split mean difference — the statistic the tables report. The percentile
interval of those resampled means is the interval of the difference; the relative
difference (mean A / mean B − 1) is resampled the same way.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

logger = logging.getLogger(__name__)

N_RESAMPLES = 1_000
BOOTSTRAP_SEED = 0
CONFIDENCE = 0.95


def paired_bootstrap(
    a_per_split: Sequence[np.ndarray],
    b_per_split: Sequence[np.ndarray],
    n_resamples: int = N_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
    confidence: float = CONFIDENCE,
) -> dict[str, object]:
    """Observed mean-over-splits difference A − B and its percentile interval.

    ``a_per_split[s][j]`` and ``b_per_split[s][j]`` are the two methods' metric for the
    same user j of split s; users where either is NaN (empty target) are left out.
    """
    rng = np.random.default_rng(seed)
    lo_q, hi_q = 100 * (1 - confidence) / 2, 100 * (1 + confidence) / 2
    diffs = np.zeros(n_resamples)
    a_means = np.zeros(n_resamples)
    b_means = np.zeros(n_resamples)
    per_split = []
    n_splits = len(a_per_split)
    for a, b in zip(a_per_split, b_per_split, strict=True):
        a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
        ok = np.isfinite(a) & np.isfinite(b)
        a, b = a[ok], b[ok]
        idx = rng.integers(0, len(a), size=(n_resamples, len(a)))
        ra, rb = a[idx].mean(axis=1), b[idx].mean(axis=1)
        d = ra - rb
        diffs += d / n_splits
        a_means += ra / n_splits
        b_means += rb / n_splits
        per_split.append({
            "users": len(a),
            "difference": float(a.mean() - b.mean()),
            "ci": [float(np.percentile(d, lo_q)), float(np.percentile(d, hi_q))],
        })
    obs_a = float(np.mean([np.nanmean(np.asarray(x, dtype=np.float64)) for x in a_per_split]))
    obs_b = float(np.mean([np.nanmean(np.asarray(x, dtype=np.float64)) for x in b_per_split]))
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = a_means / b_means - 1.0
    return {
        "mean_a": obs_a,
        "mean_b": obs_b,
        "difference": float(np.mean([s["difference"] for s in per_split])),
        "ci": [float(np.percentile(diffs, lo_q)), float(np.percentile(diffs, hi_q))],
        "relative": obs_a / obs_b - 1.0 if obs_b else float("nan"),
        "relative_ci": [float(np.nanpercentile(rel, lo_q)), float(np.nanpercentile(rel, hi_q))],
        "confidence": confidence,
        "n_resamples": n_resamples,
        "seed": seed,
        "per_split": per_split,
    }
