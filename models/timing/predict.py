"""From the model's quantiles to what a shopper sees: days until due, interval, urgency.

The ONNX model returns, per pair and moment, the 10/50/90% quantiles of the days until the
pair's next purchase (the elapsed time is already among its features). Between those
three points the distribution is taken as a two-piece log-normal: each half is a normal in
log-days, so it passes exactly through the three quantiles and allows skew.

- ``days_until`` = the median; ``low_days`` / ``high_days`` = the 80% interval;
- ``urgency`` = P(bought within ``URGENCY_WINDOW_DAYS``): the chance the shopper buys the
  category in the coming week, the horizon of a shopping list.

Pure numpy/scipy: the edge imports this with the features module.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import ndtr, ndtri

LOW_Q, MID_Q, HIGH_Q = 0.1, 0.5, 0.9  # the model's quantiles: an 80% central interval
_Z_HIGH = float(ndtri(HIGH_Q))
# Shortest time in the model's world (purchases closer than this are one occasion); also
# keeps the logs finite.
MIN_DAYS = 0.5
# Urgency is the chance of buying within this many days: a week is a shopping list's reach.
URGENCY_WINDOW_DAYS = 7.0
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


def days_cdf(quantiles: np.ndarray, days: np.ndarray) -> np.ndarray:
    """P(next purchase within ``days``) per row of ``quantiles`` ([N, 3] low/mid/high)."""
    mu, s_lo, s_hi = _log_params(quantiles)
    days = np.broadcast_to(np.asarray(days, dtype=np.float64), mu.shape)
    x = np.log(np.maximum(days, 1e-9))
    z = np.where(x < mu, (x - mu) / s_lo, (x - mu) / s_hi)
    return np.where(days <= 0, 0.0, ndtr(z))


def urgency(quantiles: np.ndarray) -> np.ndarray:
    """P(bought within ``URGENCY_WINDOW_DAYS``) per row."""
    return days_cdf(quantiles, np.asarray(URGENCY_WINDOW_DAYS))


def predictions(quantiles: np.ndarray) -> list[TimingPrediction]:
    """Row-wise :class:`TimingPrediction` objects (for the edge's JSON responses)."""
    q = np.sort(np.asarray(quantiles, dtype=np.float64).reshape(-1, 3), axis=1)
    return [
        TimingPrediction(float(row[1]), float(row[0]), float(row[2]), float(u))
        for row, u in zip(q, urgency(q), strict=True)
    ]
