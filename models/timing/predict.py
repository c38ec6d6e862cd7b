"""From the model's gap quantiles to what a shopper sees: days until due, interval, urgency.

The ONNX model returns, per pair, the 10/50/90% quantiles of the gap (days) between the
pair's last purchase and its next one. Between those three points the gap distribution is
taken as a two-piece log-normal: each half is a normal in log-days, so it passes exactly
through the three quantiles and allows skew. Given the days already elapsed since the last
purchase, the prediction is conditioned on "not bought yet":

- ``urgency`` = P(gap <= elapsed): how much of the usual cycle has passed (0 just after a
  purchase, 0.5 at the predicted median, near 1 when clearly overdue);
- ``days_until`` and the interval = quantiles of (gap - elapsed | gap > elapsed).

Pure numpy/scipy: the edge imports this with the features module.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from scipy.special import ndtr, ndtri

logger = logging.getLogger(__name__)

LOW_Q, MID_Q, HIGH_Q = 0.1, 0.5, 0.9  # the model's quantiles: an 80% central interval
_Z_HIGH = float(ndtri(HIGH_Q))
# Shortest gap in the model's world (purchases closer than this are one occasion); also
# keeps the logs finite.
MIN_DAYS = 0.5
# Spread floor in log-days so that a degenerate (collapsed) interval still yields a CDF.
MIN_LOG_SPREAD = 1e-3


@dataclass(frozen=True)
class TimingPrediction:
    """One pair's purchase-timing prediction at a given moment."""

    days_until: float
    low_days: float
    high_days: float
    urgency: float


def _log_params(q: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    q = np.maximum(np.sort(np.asarray(q, dtype=np.float64).reshape(-1, 3), axis=1), MIN_DAYS)
    logs = np.log(q)
    s_lo = np.maximum((logs[:, 1] - logs[:, 0]) / _Z_HIGH, MIN_LOG_SPREAD)
    s_hi = np.maximum((logs[:, 2] - logs[:, 1]) / _Z_HIGH, MIN_LOG_SPREAD)
    return logs[:, 1], s_lo, s_hi


def gap_cdf(quantiles: np.ndarray, days: np.ndarray) -> np.ndarray:
    """P(gap <= days) per row of ``quantiles`` ([N, 3] low/mid/high days)."""
    mu, s_lo, s_hi = _log_params(quantiles)
    days = np.broadcast_to(np.asarray(days, dtype=np.float64), mu.shape)
    x = np.log(np.maximum(days, 1e-9))
    z = np.where(x < mu, (x - mu) / s_lo, (x - mu) / s_hi)
    return np.where(days <= 0, 0.0, ndtr(z))


def gap_quantile(quantiles: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Inverse of :func:`gap_cdf`: the gap (days) at probability ``p`` per row."""
    mu, s_lo, s_hi = _log_params(quantiles)
    p = np.clip(np.broadcast_to(np.asarray(p, dtype=np.float64), mu.shape), 1e-9, 1 - 1e-9)
    z = ndtri(p)
    return np.exp(mu + z * np.where(z < 0, s_lo, s_hi))


def condition_on_elapsed(
    quantiles: np.ndarray, elapsed_days: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(remaining-days quantiles [N, 3], urgency [N]) given days since the last purchase."""
    elapsed = np.maximum(np.asarray(elapsed_days, dtype=np.float64), 0.0)
    f0 = gap_cdf(quantiles, elapsed)
    out = np.empty((len(f0), 3))
    for j, p in enumerate((LOW_Q, MID_Q, HIGH_Q)):
        out[:, j] = np.maximum(gap_quantile(quantiles, f0 + p * (1.0 - f0)) - elapsed, 0.0)
    return out, f0


def predictions(quantiles: np.ndarray, elapsed_days: np.ndarray) -> list[TimingPrediction]:
    """Row-wise :class:`TimingPrediction` objects (for the edge's JSON responses)."""
    remaining, urgency = condition_on_elapsed(quantiles, elapsed_days)
    return [
        TimingPrediction(float(r[1]), float(r[0]), float(r[2]), float(u))
        for r, u in zip(remaining, urgency, strict=True)
    ]
