"""Shopper-level state and RFM features for customer segments — training and serving.

The edge keeps one :class:`ShopperState` per shopper, updated once per basket
(:meth:`ShopperState.add_trip`), and computes :func:`segment_features` from it at any
moment; training replays the same updates over the history, so both sides share this one
implementation. The state is a handful of numbers: no history is rescanned at serve time.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

# Bump when a feature's meaning or order changes; the bundle manifest records it and the
# edge refuses a model trained on another version.
FEATURE_SCHEMA_VERSION = 1

FEATURE_NAMES: tuple[str, ...] = (
    "log_recency_days",  # days since the last trip
    "log_tenure_days",  # days since the first trip
    "log_trips_per_30d",  # visit frequency
    "log_spend_per_trip",  # average basket value
    "log_spend_per_30d",  # frequency x value: the shopper's worth per month
)

SECONDS_PER_DAY = 86_400.0
# Frequency is trips over tenure; a shopper seen once today would otherwise have an
# infinite rate. A month is the shortest window in which a "regular" can show up as one.
MIN_RATE_WINDOW_DAYS = 30.0
RATE_PERIOD_DAYS = 30.0
# EWM weight of the newest gap between trips: a shopper drifting away (longer and longer
# gaps) shows within a few trips, before the lifetime average moves.
TRIP_GAP_EWM_ALPHA = 0.2


@dataclass
class ShopperState:
    """Running totals of one shopper's trips (epoch seconds, spend in currency units)."""

    trips: int = 0
    first_ts: float = math.nan
    last_ts: float = math.nan
    spend: float = 0.0
    last_spend: float = 0.0  # the latest basket's value (a stock-up trip lasts longer)
    trip_gap_ewm: float = math.nan  # days between trips, recent ones weighted most

    def add_trip(self, ts: float, spend: float) -> None:
        """Record one basket at ``ts``. Out-of-order baskets only widen the span."""
        spend = max(float(spend), 0.0)
        if self.trips == 0:
            self.first_ts = self.last_ts = ts
        else:
            gap = max(ts - self.last_ts, 0.0) / SECONDS_PER_DAY
            self.trip_gap_ewm = (
                gap if math.isnan(self.trip_gap_ewm)
                else self.trip_gap_ewm + TRIP_GAP_EWM_ALPHA * (gap - self.trip_gap_ewm)
            )
            self.first_ts = min(self.first_ts, ts)
            self.last_ts = max(self.last_ts, ts)
        self.trips += 1
        self.spend += spend
        self.last_spend = spend

    def mean_trip_gap_days(self) -> float:
        """Average days between trips so far; NaN before the second trip."""
        if self.trips < 2:
            return math.nan
        return (self.last_ts - self.first_ts) / SECONDS_PER_DAY / (self.trips - 1)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ShopperState:
        return cls(**data)


def segment_features(state: ShopperState, now_ts: float) -> np.ndarray:
    """RFM features of one shopper at ``now_ts`` (float32, in ``FEATURE_NAMES`` order).

    A shopper with no trip yet has no features; callers skip them (nothing to segment).
    """
    if state.trips == 0:
        raise ValueError("a shopper with no trips has no segment features")
    recency = max(now_ts - state.last_ts, 0.0) / SECONDS_PER_DAY
    tenure = max(now_ts - state.first_ts, 0.0) / SECONDS_PER_DAY
    window = max(tenure, MIN_RATE_WINDOW_DAYS)
    trips_per_period = state.trips / window * RATE_PERIOD_DAYS
    spend_per_trip = state.spend / state.trips
    return np.array(
        [
            math.log1p(recency),
            math.log1p(tenure),
            math.log1p(trips_per_period),
            math.log1p(spend_per_trip),
            math.log1p(trips_per_period * spend_per_trip),
        ],
        dtype=np.float32,
    )


def raw_values(features: np.ndarray) -> np.ndarray:
    """Undo the log1p of feature rows: recency/tenure in days, rates per 30 days, spend."""
    return np.expm1(np.asarray(features, dtype=np.float64))
