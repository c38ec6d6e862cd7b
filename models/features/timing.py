"""Purchase-timing state and features per shopper x category — training and serving.

One :class:`PairState` per (shopper, category) holds a few running numbers, updated once
per basket that contains the category (:meth:`PairState.add_purchase`). The model predicts
the days from *a given moment* to the pair's next purchase, so its features have two parts:

- the occasion features (:func:`occasion_features`), a function of the pair's state alone,
  as of its last purchase: counts, gaps, how regular the cycle is, the shopper's rhythm;
- the elapsed features (:func:`elapsed_features`), what has happened since: days elapsed,
  the shopper's trips since without the category, days since the shopper's last trip.
  "Six trips without milk" means the habit lapsed; "no trip at all" means it waits.

:func:`timing_features` joins both for a shopper at a moment; serving never rescans
history. Training (``models.timing.data``) replays every basket through these same updates
and computes the elapsed part with the same vectorised function.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from statistics import median
from typing import Any

import numpy as np

from models.features.segments import SECONDS_PER_DAY, ShopperState

# Bump when a feature's meaning or order changes; the bundle manifest records it.
# 2: the model predicts from any moment, with the elapsed features (1: from the purchase).
FEATURE_SCHEMA_VERSION = 2

OCCASION_FEATURE_NAMES: tuple[str, ...] = (
    "log_count",  # purchase occasions of the category so far
    "log_tenure_days",  # first to last occasion
    "log_last_gap",
    "log_mean_gap",
    "log_median_recent_gap",  # median of the last RECENT_GAPS gaps
    "log_ewm_gap",  # recent gaps weighted most
    "gap_cv",  # std / mean of all gaps: how regular the cycle is
    "log_min_recent_gap",
    "log_max_recent_gap",
    "log_category_median_gap",  # population prior for the category
    "log_shopper_trip_gap",  # the shopper's mean days between any two trips
    "trip_share",  # share of the shopper's trips that include the category
    "log_shopper_tenure_days",  # how long the shopper has been observed
    "log_qty_ratio",  # last occasion's quantity vs the pair's mean (stocked up?)
    "log_shopper_recent_trip_gap",  # EWM of the shopper's days between trips
    "log_basket_spend_ratio",  # that basket's value vs the shopper's mean (big shop?)
    "category_repeat_share",  # population prior: share of repeats within the horizon
)
ELAPSED_FEATURE_NAMES: tuple[str, ...] = (
    "log_elapsed_days",  # since the pair's last occasion
    "log_trips_since",  # the shopper's trips since then, none with the category
    "log_days_since_shopper_trip",  # since the shopper's last trip of any kind
    "log_elapsed_over_recent_gap",  # log1p(elapsed / median recent gap): > log 2 is overdue
    "log_expected_occasions_missed",  # trips since x the category's share of trips
)
FEATURE_NAMES: tuple[str, ...] = OCCASION_FEATURE_NAMES + ELAPSED_FEATURE_NAMES

# Value for a feature that is undefined (e.g. a gap before the second purchase). Every
# feature that can be undefined is a log1p of days or a ratio >= 0 when defined, so -1
# never collides, and trees split it off cleanly (no reliance on NaN routing in ONNX).
MISSING = -1.0
# Baskets of the same category this close together are one shopping occasion (a top-up
# trip the same day), not a repurchase cycle of a few hours.
SAME_OCCASION_DAYS = 0.5
# Gaps kept for the recent median/min/max: two months of a weekly purchase, yet a fixed,
# small state per pair.
RECENT_GAPS = 8
# EWM weight of the newest gap: about the last three gaps dominate, so a changed habit
# (new baby, diet) shows within a few cycles.
GAP_EWM_ALPHA = 0.3
# A zero-value basket (all free/discounted) would give log(0); a 1% basket is as extreme.
SPEND_RATIO_FLOOR = 0.01


@dataclass
class PairState:
    """Running state of one shopper's purchases in one category (times in epoch seconds)."""

    count: int = 0
    first_ts: float = math.nan
    last_ts: float = math.nan
    n_gaps: int = 0
    gap_mean: float = 0.0
    gap_m2: float = 0.0  # Welford's sum of squared deviations
    gap_ewm: float = math.nan
    last_gap: float = math.nan
    recent_gaps: list[float] = field(default_factory=list)
    qty_sum: float = 0.0
    last_qty: float = 0.0
    # The shopper's totals at this pair's last occasion (features are "as of" that moment).
    shopper_trips: int = 0
    shopper_first_ts: float = math.nan
    shopper_last_ts: float = math.nan
    shopper_trip_gap_ewm: float = math.nan
    shopper_spend_ratio: float = 1.0  # last basket's spend / the shopper's mean basket

    def add_purchase(self, ts: float, quantity: float, shopper: ShopperState) -> bool:
        """Record a basket at ``ts`` containing the category; ``shopper`` already counts it.

        Returns True when this is a new occasion (a gap was observed or it is the first),
        False when it was merged into the last occasion: a same-day top-up, or a basket
        older than the last occasion (a late delivery), so gaps only ever move forward.
        """
        quantity = max(float(quantity), 0.0)
        self.qty_sum += quantity
        self._snapshot(shopper)
        if self.count and (ts - self.last_ts) / SECONDS_PER_DAY < SAME_OCCASION_DAYS:
            self.last_qty += quantity
            return False
        if self.count == 0:
            self.first_ts = ts
        else:
            self._add_gap((ts - self.last_ts) / SECONDS_PER_DAY)
        self.count += 1
        self.last_ts = ts
        self.last_qty = quantity
        return True

    def _add_gap(self, gap: float) -> None:
        self.n_gaps += 1
        delta = gap - self.gap_mean
        self.gap_mean += delta / self.n_gaps
        self.gap_m2 += delta * (gap - self.gap_mean)
        if math.isnan(self.gap_ewm):
            self.gap_ewm = gap
        else:
            self.gap_ewm += GAP_EWM_ALPHA * (gap - self.gap_ewm)
        self.last_gap = gap
        self.recent_gaps.append(gap)
        del self.recent_gaps[:-RECENT_GAPS]

    def _snapshot(self, shopper: ShopperState) -> None:
        self.shopper_trips = shopper.trips
        self.shopper_first_ts = shopper.first_ts
        self.shopper_last_ts = shopper.last_ts
        self.shopper_trip_gap_ewm = shopper.trip_gap_ewm
        mean_spend = shopper.spend / shopper.trips if shopper.trips else 0.0
        self.shopper_spend_ratio = shopper.last_spend / mean_spend if mean_spend > 0 else 1.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PairState:
        return cls(**data)


def apply_basket(trips: ShopperState, pairs: dict[str, PairState], ts: float, spend: float,
                 quantity_by_category: Mapping[str, float]) -> None:
    """One basket into a shopper's timing state: the trip first (each category's purchase
    is counted against the shopper's trips), then each category bought. The one replay of
    a basket, for the edge's writer, retraining's evaluation and the cloud's analysis."""
    trips.add_trip(ts, spend)
    for category, quantity in sorted(quantity_by_category.items()):
        pair = pairs.get(category)
        if pair is None:
            pair = pairs[category] = PairState()
        pair.add_purchase(ts, quantity, trips)


def _log(days: float) -> float:
    return MISSING if math.isnan(days) else math.log1p(max(days, 0.0))


@dataclass(frozen=True)
class CategoryPrior:
    """Population statistics of a category from the training period (shipped in a bundle)."""

    median_gap_days: float = math.nan
    repeat_share: float = math.nan  # share of occasions repeated within the horizon


_PRIOR_MEDIAN = FEATURE_NAMES.index("log_category_median_gap")
_PRIOR_REPEAT = FEATURE_NAMES.index("category_repeat_share")
_RECENT_GAP = FEATURE_NAMES.index("log_median_recent_gap")
_TRIP_SHARE = FEATURE_NAMES.index("trip_share")


def set_category_prior(
    features: np.ndarray, median_gap_days: np.ndarray, repeat_share: np.ndarray
) -> None:
    """Fill the category-prior columns of feature rows in place (training's batch path).

    Training replays the history before the category statistics are known, then fills the
    columns with the same transforms :func:`timing_features` applies one row at a time.
    """
    days = np.asarray(median_gap_days, dtype=np.float64)
    share = np.asarray(repeat_share, dtype=np.float64)
    features[:, _PRIOR_MEDIAN] = np.where(np.isnan(days), MISSING, np.log1p(np.maximum(days, 0)))
    features[:, _PRIOR_REPEAT] = np.where(np.isnan(share), MISSING, share)


def occasion_features(state: PairState, prior: CategoryPrior) -> np.ndarray:
    """One pair's features as of its last occasion (float32, ``OCCASION_FEATURE_NAMES``)."""
    if state.count == 0:
        raise ValueError("a pair with no purchase has no timing features")
    gaps = state.recent_gaps
    std = math.sqrt(state.gap_m2 / (state.n_gaps - 1)) if state.n_gaps >= 2 else math.nan
    cv = std / state.gap_mean if state.n_gaps >= 2 and state.gap_mean > 0 else math.nan
    shopper_span = (state.shopper_last_ts - state.shopper_first_ts) / SECONDS_PER_DAY
    trip_gap = shopper_span / (state.shopper_trips - 1) if state.shopper_trips >= 2 else math.nan
    qty_mean = state.qty_sum / state.count
    return np.array(
        [
            math.log1p(state.count),
            _log((state.last_ts - state.first_ts) / SECONDS_PER_DAY),
            _log(state.last_gap),
            _log(state.gap_mean if state.n_gaps else math.nan),
            _log(median(gaps) if gaps else math.nan),
            _log(state.gap_ewm),
            MISSING if math.isnan(cv) else cv,
            _log(min(gaps) if gaps else math.nan),
            _log(max(gaps) if gaps else math.nan),
            _log(prior.median_gap_days),
            _log(trip_gap),
            min(state.count / max(state.shopper_trips, 1), 1.0),
            _log(shopper_span),
            math.log1p(state.last_qty) - math.log1p(qty_mean),
            _log(state.shopper_trip_gap_ewm),
            math.log(max(state.shopper_spend_ratio, SPEND_RATIO_FLOOR)),
            MISSING if math.isnan(prior.repeat_share) else prior.repeat_share,
        ],
        dtype=np.float32,
    )


def elapsed_features(
    occasion: np.ndarray, elapsed_days: np.ndarray, trips_since: np.ndarray,
    days_since_trip: np.ndarray,
) -> np.ndarray:
    """What happened since each row's last occasion (float32, ``ELAPSED_FEATURE_NAMES``).

    ``occasion`` holds the rows' occasion features; the other arguments are per row: days
    since the pair's last occasion, the shopper's trips since it, days since the shopper's
    last trip. Vectorised: training computes millions of rows with it.
    """
    elapsed = np.maximum(np.asarray(elapsed_days, np.float64), 0.0)
    trips = np.maximum(np.asarray(trips_since, np.float64), 0.0)
    since_trip = np.maximum(np.asarray(days_since_trip, np.float64), 0.0)
    log_gap = occasion[:, _RECENT_GAP].astype(np.float64)
    # expm1 undoes the log1p of the stored median gap; MISSING stays MISSING.
    recent_gap = np.where(log_gap == MISSING, np.nan, np.expm1(np.maximum(log_gap, 0.0)))
    with np.errstate(divide="ignore", invalid="ignore"):
        overdue = np.log1p(elapsed / np.maximum(recent_gap, SAME_OCCASION_DAYS))
    return np.column_stack([
        np.log1p(elapsed),
        np.log1p(trips),
        np.log1p(since_trip),
        np.where(np.isnan(recent_gap), MISSING, overdue),
        np.log1p(trips * occasion[:, _TRIP_SHARE]),
    ]).astype(np.float32)


def timing_features(
    pairs: Sequence[tuple[PairState, CategoryPrior]], shopper: ShopperState, now_ts: float
) -> np.ndarray:
    """Feature rows (float32 ``[N, len(FEATURE_NAMES)]``) of one shopper's pairs at ``now_ts``.

    ``shopper`` is the shopper's state now; each pair recorded the shopper's trip count at
    its last occasion, so the difference is the trips made since without the category.
    """
    if not pairs:
        return np.zeros((0, len(FEATURE_NAMES)), np.float32)
    occasion = np.vstack([occasion_features(state, prior) for state, prior in pairs])
    elapsed = [(now_ts - state.last_ts) / SECONDS_PER_DAY for state, _ in pairs]
    trips = [shopper.trips - state.shopper_trips for state, _ in pairs]
    since_trip = (now_ts - shopper.last_ts) / SECONDS_PER_DAY if shopper.trips else 0.0
    extra = elapsed_features(occasion, np.array(elapsed), np.array(trips),
                             np.full(len(pairs), since_trip))
    return np.hstack([occasion, extra])
