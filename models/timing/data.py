"""Turn a basket dataset into purchase-timing rows by replaying the serving-side state.

:func:`replay` gives a row per purchase occasion of a (shopper, category) pair: the
occasion features (exactly what the edge would compute from its state), the time, and
when the pair bought next; a same-day top-up merged into an occasion adds a row, the
occasion's state from that basket on. Predictions are made at *moments* (:class:`Moments`): at an
occasion itself, or at any later time before the next one, as the edge does when a
shopper asks for their list. The label is the number of days from the moment to the pair's
next occasion, capped at a horizon so that every label with enough follow-up is fully
observed.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from statistics import median

import numpy as np

from models.datasets.base import BasketDataset
from models.features.segments import SECONDS_PER_DAY, ShopperState
from models.features.timing import (
    OCCASION_FEATURE_NAMES,
    CategoryPrior,
    PairState,
    elapsed_features,
    occasion_features,
)

logger = logging.getLogger(__name__)


# Category statistics are filled in after the replay (they come from the training labels).
_NO_PRIOR = CategoryPrior()


class TimingDataError(ValueError):
    """The dataset cannot be used for purchase timing (no timestamps or categories)."""


def days_to_next(next_t: np.ndarray, t: np.ndarray, horizon_days: float) -> np.ndarray:
    """The label: days from ``t`` to the next occasion, capped at ``horizon_days`` (no next
    occasion, NaN, counts as the horizon: "not within H days")."""
    days = (next_t - t) / SECONDS_PER_DAY
    return np.where(np.isnan(days), horizon_days, np.minimum(days, horizon_days))


@dataclass(frozen=True)
class TimingRows:
    """A pair's state after each basket with the category, parallel arrays.

    Each row is valid from ``since`` until ``until``: a new occasion's row from its basket,
    and a same-day top-up (merged into the occasion, ``first`` False) makes a new row of the
    same occasion from the top-up's basket on, so a moment between the two never sees the
    top-up. ``features`` has the category prior still unset.
    """

    features: np.ndarray  # float32 [N, len(OCCASION_FEATURE_NAMES)]
    user: np.ndarray  # int32
    category: np.ndarray  # int32
    t: np.ndarray  # float64 epoch seconds of the occasion
    since: np.ndarray  # float64 epoch seconds of the basket that made this row's state
    until: np.ndarray  # float64 when the next row of the pair takes over (inf: never)
    first: np.ndarray  # bool: the occasion's own row (not a top-up's)
    next_t: np.ndarray  # float64 epoch seconds of the pair's next occasion, NaN if none
    n_gaps: np.ndarray  # int32 gaps of the pair observed up to this occasion
    pair_median_gap: np.ndarray  # float64 median of all the pair's gaps so far, NaN if none
    shopper_trips: np.ndarray  # int32 the shopper's trips at the occasion (as PairState)
    end_t: float  # last timestamp in the data: labels are censored after it
    category_names: list[str]
    trips: TripTable  # every shopper's trip times, for "trips since" at any moment

    def __len__(self) -> int:
        return len(self.t)

    def labels(self, horizon_days: float) -> tuple[np.ndarray, np.ndarray]:
        """(days from the occasion to the next capped at ``horizon_days``, usable mask).

        An occasion's own row is usable when its follow-up covers the horizon; a pair with
        no further occasion within it gets the horizon as label ("not within H days").
        """
        usable = self.first & (self.t + horizon_days * SECONDS_PER_DAY <= self.end_t)
        return days_to_next(self.next_t, self.t, horizon_days), usable

    def active_at(self, moment: float) -> np.ndarray:
        """Indices of each pair's row valid at ``moment`` (pairs bought by then)."""
        return np.nonzero((self.since <= moment) & (moment < self.until))[0]


class TripTable:
    """Every basket's (shopper, time), sorted, to count a shopper's trips up to a moment."""

    def __init__(self, user: np.ndarray, ts: np.ndarray) -> None:
        order = np.lexsort((ts, user))
        self.user = np.asarray(user, np.int32)[order]
        self.ts = np.asarray(ts, np.float64)[order]
        # One sorted float key per trip: shopper * span + time offset. Offsets stay in
        # [-0.5, range + 0.5] and span = range + 2, so shoppers' key ranges never touch.
        self._t0 = float(self.ts.min()) if len(self.ts) else 0.0
        self._range = float(self.ts.max()) - self._t0 if len(self.ts) else 0.0
        self._keys = self._key(self.user, self.ts)

    def _key(self, user: np.ndarray, ts: np.ndarray) -> np.ndarray:
        offset = np.clip(np.asarray(ts, np.float64) - self._t0, -0.5, self._range + 0.5)
        return np.asarray(user, np.float64) * (self._range + 2.0) + offset

    def up_to(self, user: np.ndarray, moment: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per row: (the shopper's trips at or before ``moment``, the latest one's time)."""
        end = np.searchsorted(self._keys, self._key(user, moment), side="right")
        start = np.searchsorted(self.user, user, side="left")
        last = np.where(end > start, self.ts[np.maximum(end - 1, 0)], np.nan)
        return end - start, last


@dataclass(frozen=True)
class Moments:
    """Prediction moments: one pair's state (an occasion row) at a time before its next
    occasion. ``features`` has every timing feature, the category prior still unset."""

    row: np.ndarray  # int index into the TimingRows
    t: np.ndarray  # float64 epoch seconds of the moment
    features: np.ndarray  # float32 [N, len(FEATURE_NAMES)]

    def __len__(self) -> int:
        return len(self.t)

    def labels(self, rows: TimingRows, horizon_days: float) -> np.ndarray:
        """Days from the moment to the pair's next occasion, capped at ``horizon_days``."""
        return days_to_next(rows.next_t[self.row], self.t, horizon_days)

    def elapsed_days(self, rows: TimingRows) -> np.ndarray:
        return (self.t - rows.t[self.row]) / SECONDS_PER_DAY

    def subset(self, mask: np.ndarray) -> Moments:
        return Moments(self.row[mask], self.t[mask], self.features[mask])

    @staticmethod
    def concat(parts: list[Moments]) -> Moments:
        return Moments(
            np.concatenate([p.row for p in parts]), np.concatenate([p.t for p in parts]),
            np.vstack([p.features for p in parts]),
        )


def moments(rows: TimingRows, row: np.ndarray, t: np.ndarray) -> Moments:
    """The timing features of occasion rows ``row`` at moments ``t`` (>= the occasion)."""
    row = np.asarray(row, np.int64)
    t = np.asarray(t, np.float64)
    trips, last_trip = rows.trips.up_to(rows.user[row], t)
    occasion = rows.features[row]
    extra = elapsed_features(
        occasion, (t - rows.t[row]) / SECONDS_PER_DAY, trips - rows.shopper_trips[row],
        np.where(np.isnan(last_trip), 0.0, (t - last_trip) / SECONDS_PER_DAY),
    )
    return Moments(row, t, np.hstack([occasion, extra]))


def at_occasions(rows: TimingRows, row: np.ndarray) -> Moments:
    """Moments at the occasions themselves: "when will they buy this again?" at the till."""
    return moments(rows, row, rows.t[row])


def at_cutoffs(
    rows: TimingRows, cutoffs: np.ndarray, sample: float = 1.0,
    rng: np.random.Generator | None = None,
) -> Moments:
    """Every pair bought before each cutoff, at that cutoff (a share ``sample`` of them)."""
    parts = []
    for cutoff in np.asarray(cutoffs, np.float64):
        row = rows.active_at(cutoff)
        if sample < 1.0:
            row = row[(rng or np.random.default_rng()).random(len(row)) < sample]
        parts.append(moments(rows, row, np.full(len(row), cutoff)))
    if not parts:
        return moments(rows, np.zeros(0, np.int64), np.zeros(0))
    return Moments.concat(parts)


def basket_table(ds: BasketDataset) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per basket: (user, ts, spend) and the row offsets of its lines (``basket_starts``)."""
    starts = ds.basket_starts()
    first = starts[:-1]
    spend = (
        np.add.reduceat(ds.price.astype(np.float64), first)
        if ds.price is not None and len(first)
        else np.zeros(len(first))
    )
    return ds.user[first], ds.ts[first], spend, starts


def replay(ds: BasketDataset) -> TimingRows:
    """Replay every basket through :class:`ShopperState` / :class:`PairState` updates."""
    if ds.category is None or ds.category_names is None:
        raise TimingDataError(f"dataset {ds.name!r} has no product categories")
    if not ds.has_timestamps or np.isnan(ds.ts).any():
        raise TimingDataError(f"dataset {ds.name!r} needs a timestamp on every line")
    users, b_ts, b_spend, starts = basket_table(ds)
    qty = ds.quantity if ds.quantity is not None else np.ones(ds.n_rows, dtype=np.float32)

    feats: list[np.ndarray] = []
    row_user: list[int] = []
    row_cat: list[int] = []
    row_t: list[float] = []
    row_since: list[float] = []
    row_until: list[float] = []
    row_first: list[bool] = []
    row_gaps: list[int] = []
    row_pair_median: list[float] = []
    row_trips: list[int] = []
    next_t: list[float] = []
    shoppers: dict[int, ShopperState] = {}
    pairs: dict[tuple[int, int], PairState] = {}
    # Training-only side data (never part of the serving state): every gap of a pair, for
    # the "pair median gap" baseline, and the rows of its latest occasion, to fill in
    # their label.
    all_gaps: dict[tuple[int, int], list[float]] = {}
    occasion_rows: dict[tuple[int, int], list[int]] = {}

    for b in range(len(users)):
        u, ts = int(users[b]), float(b_ts[b])
        shopper = shoppers.setdefault(u, ShopperState())
        shopper.add_trip(ts, float(b_spend[b]))
        lo, hi = int(starts[b]), int(starts[b + 1])
        cats, inverse = np.unique(ds.category[lo:hi], return_inverse=True)
        cat_qty = np.bincount(inverse.reshape(-1), weights=qty[lo:hi], minlength=len(cats))
        for c, q in zip(cats.tolist(), cat_qty.tolist(), strict=True):
            key = (u, c)
            pair = pairs.get(key)
            if pair is None:
                pair = pairs[key] = PairState()
            previous_ts = pair.last_ts
            new_occasion = pair.add_purchase(ts, q, shopper)
            gaps = all_gaps.setdefault(key, [])
            rows_so_far = occasion_rows.get(key, [])
            if rows_so_far:
                row_until[rows_so_far[-1]] = ts  # this basket's state takes over
            if new_occasion:
                if pair.count > 1:
                    gaps.append((ts - previous_ts) / SECONDS_PER_DAY)
                    for r in rows_so_far:
                        next_t[r] = ts
                occasion_rows[key] = rows_so_far = []
            rows_so_far.append(len(row_t))
            feats.append(occasion_features(pair, _NO_PRIOR))
            row_trips.append(pair.shopper_trips)
            row_user.append(u)
            row_cat.append(c)
            row_t.append(pair.last_ts)
            row_since.append(ts)
            row_until.append(math.inf)
            row_first.append(new_occasion)
            row_gaps.append(len(gaps))
            row_pair_median.append(median(gaps) if gaps else math.nan)
            next_t.append(math.nan)

    logger.info(
        "timing replay of %s: %d baskets, %d pairs, %d occasions (%d rows with top-ups)",
        ds.name, len(users), len(pairs), sum(row_first), len(row_t),
    )
    return TimingRows(
        features=np.vstack(feats) if feats
        else np.zeros((0, len(OCCASION_FEATURE_NAMES)), np.float32),
        user=np.asarray(row_user, dtype=np.int32),
        category=np.asarray(row_cat, dtype=np.int32),
        t=np.asarray(row_t, dtype=np.float64),
        since=np.asarray(row_since, dtype=np.float64),
        until=np.asarray(row_until, dtype=np.float64),
        first=np.asarray(row_first, dtype=bool),
        next_t=np.asarray(next_t, dtype=np.float64),
        n_gaps=np.asarray(row_gaps, dtype=np.int32),
        pair_median_gap=np.asarray(row_pair_median, dtype=np.float64),
        shopper_trips=np.asarray(row_trips, dtype=np.int32),
        end_t=float(np.nanmax(ds.ts)) if ds.n_rows else 0.0,
        category_names=list(ds.category_names),
        trips=TripTable(users, b_ts),
    )
