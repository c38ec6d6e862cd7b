"""Turn a basket dataset into purchase-timing rows by replaying the serving-side state.

Each row is one purchase occasion of a (shopper, category) pair: the features as of that
occasion (exactly what the edge would compute from its state), the time, and the label —
days until the pair's next occasion, capped at a horizon so that every label in a window
with enough follow-up is fully observed.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from statistics import median

import numpy as np

from models.datasets.base import BasketDataset
from models.features.segments import SECONDS_PER_DAY, ShopperState
from models.features.timing import FEATURE_NAMES, CategoryPrior, PairState, timing_features

logger = logging.getLogger(__name__)


# Category statistics are filled in after the replay (they come from the training labels).
_NO_PRIOR = CategoryPrior()


class TimingDataError(ValueError):
    """The dataset cannot be used for purchase timing (no timestamps or categories)."""


@dataclass(frozen=True)
class TimingRows:
    """Occasion rows, parallel arrays; ``features`` has the category prior still unset."""

    features: np.ndarray  # float32 [N, F]
    user: np.ndarray  # int32
    category: np.ndarray  # int32
    t: np.ndarray  # float64 epoch seconds of the occasion
    next_t: np.ndarray  # float64 epoch seconds of the pair's next occasion, NaN if none
    n_gaps: np.ndarray  # int32 gaps of the pair observed up to this occasion
    pair_median_gap: np.ndarray  # float64 median of all the pair's gaps so far, NaN if none
    end_t: float  # last timestamp in the data: labels are censored after it
    category_names: list[str]

    def __len__(self) -> int:
        return len(self.t)

    def labels(self, horizon_days: float) -> tuple[np.ndarray, np.ndarray]:
        """(days to next occasion capped at ``horizon_days``, usable mask).

        A row is usable when its follow-up covers the horizon; a pair with no further
        occasion within it gets the horizon as label ("not within H days").
        """
        gap = (self.next_t - self.t) / SECONDS_PER_DAY
        usable = self.t + horizon_days * SECONDS_PER_DAY <= self.end_t
        y = np.where(np.isnan(gap), horizon_days, np.minimum(gap, horizon_days))
        return y, usable

    def subset(self, mask: np.ndarray) -> TimingRows:
        return TimingRows(
            features=self.features[mask],
            user=self.user[mask],
            category=self.category[mask],
            t=self.t[mask],
            next_t=self.next_t[mask],
            n_gaps=self.n_gaps[mask],
            pair_median_gap=self.pair_median_gap[mask],
            end_t=self.end_t,
            category_names=self.category_names,
        )


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
    row_gaps: list[int] = []
    row_pair_median: list[float] = []
    next_t: list[float] = []
    shoppers: dict[int, ShopperState] = {}
    pairs: dict[tuple[int, int], PairState] = {}
    # Training-only side data (never part of the serving state): every gap of a pair, for
    # the "pair median gap" baseline, and the pair's latest row, to fill in its label.
    all_gaps: dict[tuple[int, int], list[float]] = {}
    last_row: dict[tuple[int, int], int] = {}

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
            if not pair.add_purchase(ts, q, shopper):
                # Merged into the last occasion: its features change (quantity), so the
                # last row's features are refreshed to what the edge would now hold.
                feats[last_row[key]] = timing_features(pair, _NO_PRIOR)
                continue
            gaps = all_gaps.setdefault(key, [])
            if pair.count > 1:
                gaps.append((ts - previous_ts) / SECONDS_PER_DAY)
                next_t[last_row[key]] = ts
            last_row[key] = len(row_t)
            feats.append(timing_features(pair, _NO_PRIOR))
            row_user.append(u)
            row_cat.append(c)
            row_t.append(ts)
            row_gaps.append(len(gaps))
            row_pair_median.append(median(gaps) if gaps else math.nan)
            next_t.append(math.nan)

    logger.info(
        "timing replay of %s: %d baskets, %d pairs, %d occasions",
        ds.name, len(users), len(pairs), len(row_t),
    )
    return TimingRows(
        features=np.vstack(feats) if feats else np.zeros((0, len(FEATURE_NAMES)), np.float32),
        user=np.asarray(row_user, dtype=np.int32),
        category=np.asarray(row_cat, dtype=np.int32),
        t=np.asarray(row_t, dtype=np.float64),
        next_t=np.asarray(next_t, dtype=np.float64),
        n_gaps=np.asarray(row_gaps, dtype=np.int32),
        pair_median_gap=np.asarray(row_pair_median, dtype=np.float64),
        end_t=float(np.nanmax(ds.ts)) if ds.n_rows else 0.0,
        category_names=list(ds.category_names),
    )
