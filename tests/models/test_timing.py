"""Purchase timing: incremental state, labels, the trained model's interval, urgency."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from models.datasets.base import BasketDataset
from models.features.segments import SECONDS_PER_DAY, ShopperState
from models.features.timing import (
    FEATURE_NAMES,
    CategoryPrior,
    PairState,
    set_category_prior,
    timing_features,
)
from models.timing.data import TimingDataError, replay
from models.timing.evaluate import TimingRun, TimingSplit, category_priors, train_and_evaluate
from models.timing.model import TimingModel, TimingModelConfig
from models.timing.predict import condition_on_elapsed, gap_cdf, predictions
from models.timing.synthetic import generate

DAY = SECONDS_PER_DAY
T0 = 1_500_000_000.0
SMALL_SPLIT = TimingSplit(horizon_days=45.0, test_days=60.0, val_days=45.0)
FAST = TimingModelConfig(max_iter=40, min_samples_leaf=20)


@pytest.fixture(scope="module")
def synthetic() -> BasketDataset:
    return generate(n_users=50, n_categories=6, days=300, seed=1)


@pytest.fixture(scope="module")
def run(synthetic: BasketDataset) -> TimingRun:
    return train_and_evaluate(synthetic, SMALL_SPLIT, FAST)


def _buy(pair: PairState, shopper: ShopperState, day: float, qty: float = 1.0) -> bool:
    shopper.add_trip(T0 + day * DAY, 10.0)
    return pair.add_purchase(T0 + day * DAY, qty, shopper)


def test_state_updates_incrementally_and_merges_same_day_top_ups() -> None:
    pair, shopper = PairState(), ShopperState()
    assert _buy(pair, shopper, 0)
    assert _buy(pair, shopper, 7)
    assert not _buy(pair, shopper, 7.2)  # a top-up trip the same day: no new gap
    assert _buy(pair, shopper, 13)
    assert (pair.count, pair.n_gaps, pair.recent_gaps) == (3, 2, [7.0, 6.0])
    assert pair.gap_mean == pytest.approx(6.5)
    x = timing_features(pair, CategoryPrior(10.0, 0.9))
    assert x.dtype == np.float32 and x.shape == (len(FEATURE_NAMES),)
    named = dict(zip(FEATURE_NAMES, x.tolist(), strict=True))
    assert named["log_last_gap"] == pytest.approx(math.log1p(6.0), rel=1e-6)
    assert named["log_category_median_gap"] == pytest.approx(math.log1p(10.0), rel=1e-6)
    assert named["trip_share"] == pytest.approx(3 / 4)


def test_state_survives_a_round_trip_through_storage() -> None:
    pair, shopper = PairState(), ShopperState()
    for day in (0, 6, 13, 19, 30):
        _buy(pair, shopper, day)
    restored = PairState.from_dict(pair.to_dict())
    prior = CategoryPrior(8.0, 0.7)
    np.testing.assert_array_equal(timing_features(restored, prior), timing_features(pair, prior))
    assert ShopperState.from_dict(shopper.to_dict()) == shopper


def test_recent_gap_buffer_stays_small() -> None:
    pair, shopper = PairState(), ShopperState()
    for k in range(100):
        _buy(pair, shopper, 3.0 * k)
    assert len(pair.recent_gaps) <= 8 and pair.n_gaps == 99


def test_replay_rows_equal_serving_features(synthetic: BasketDataset) -> None:
    """Training rows are exactly what the edge computes from its state at that moment."""
    rows = replay(synthetic)
    user = int(rows.user[0])
    mask = synthetic.user == user
    shopper, pairs = ShopperState(), {}
    starts = synthetic.basket_starts()
    expected = []
    for b in np.flatnonzero(synthetic.user[starts[:-1]] == user):
        lo, hi = starts[b], starts[b + 1]
        shopper.add_trip(synthetic.ts[lo], float(synthetic.price[lo:hi].sum()))
        for c in np.unique(synthetic.category[lo:hi]):
            q = float(synthetic.quantity[lo:hi][synthetic.category[lo:hi] == c].sum())
            pair = pairs.setdefault(int(c), PairState())
            if pair.add_purchase(synthetic.ts[lo], q, shopper):
                expected.append(timing_features(pair, CategoryPrior()))
            else:
                expected[-1] = timing_features(pair, CategoryPrior())
    assert mask.any()
    got = rows.features[rows.user == user]
    assert got.shape == (len(expected), len(FEATURE_NAMES))
    np.testing.assert_allclose(got, np.vstack(expected), rtol=1e-6)


def test_labels_are_capped_and_need_full_follow_up(synthetic: BasketDataset) -> None:
    rows = replay(synthetic)
    y, usable = rows.labels(30.0)
    assert y.max() <= 30.0 and y.min() >= 0.5
    assert not usable[rows.t > rows.end_t - 30 * DAY].any()
    no_next = np.isnan(rows.next_t) & usable
    assert (y[no_next] == 30.0).all()


def test_category_prior_falls_back_for_small_categories() -> None:
    cat = np.array([0] * 40 + [1] * 3)
    labels = np.array([5.0] * 40 + [50.0] * 3)
    med, share, default = category_priors(cat, labels, 3, horizon=50.0)
    assert med[0] == 5.0
    assert med[1] == med[2] == default.median_gap_days == 5.0  # 3 rows: too few
    assert share[0] == 1.0
    x = np.zeros((2, len(FEATURE_NAMES)), np.float32)
    set_category_prior(x, med[[0, 1]], share[[0, 1]])
    assert x[0, FEATURE_NAMES.index("log_category_median_gap")] == pytest.approx(math.log1p(5))


def test_dataset_without_timestamps_is_refused(synthetic: BasketDataset) -> None:
    with pytest.raises(TimingDataError, match="timestamp"):
        replay(replace(synthetic, ts=np.full(synthetic.n_rows, np.nan)))


def test_interval_covers_about_80_percent_of_known_gaps(run: TimingRun) -> None:
    block = run.metrics["test"]["repeat (pair has >= 1 gap)"]
    model = block["methods"]["model (q50)"]
    assert block["rows"] > 500
    assert 0.72 <= model["coverage_80"] <= 0.88
    # Learns at least as much as the population prior; the pair's own median is the
    # near-optimal predictor on this data, so it is compared loosely.
    assert model["mae_days"] < block["methods"]["category median"]["mae_days"]
    assert model["mae_days"] < 1.15 * block["methods"]["pair median"]["mae_days"]
    # Urgency p means "a share p of such pairs would have bought again by now".
    for p, observed in model["urgency_calibration"].items():
        assert observed == pytest.approx(float(p), abs=0.1)


def test_urgency_grows_as_the_cycle_passes() -> None:
    q = np.array([[5.0, 10.0, 20.0]])
    assert gap_cdf(q, np.array([10.0]))[0] == pytest.approx(0.5)
    assert gap_cdf(q, np.array([5.0]))[0] == pytest.approx(0.1)
    assert gap_cdf(q, np.array([20.0]))[0] == pytest.approx(0.9)
    elapsed = np.array([0.0, 5.0, 10.0, 20.0, 40.0])
    remaining, urgency = condition_on_elapsed(np.repeat(q, 5, axis=0), elapsed)
    assert urgency[0] == 0.0 and np.all(np.diff(urgency) > 0) and urgency[-1] > 0.95
    assert remaining[0] == pytest.approx([5.0, 10.0, 20.0])  # nothing elapsed: unconditional
    assert np.all(remaining[:, 0] <= remaining[:, 1]) and np.all(remaining[:, 1] <= remaining[:, 2])
    # Closer to due as the usual cycle passes (long overdue, a log-normal tail says "some
    # time yet", which is why the kiosk shows urgency rather than a negative countdown).
    assert np.all(np.diff(remaining[:4, 1]) < 0)
    p = predictions(q, np.array([10.0]))[0]
    assert p.urgency == pytest.approx(0.5) and 0 < p.days_until < 10


def test_recency_weights_follow_the_newer_habit() -> None:
    """Old rows (a 5-day cycle, 60%) give way to recent ones (20 days) when weighted."""
    rng = np.random.default_rng(0)
    n_old, n_new = 1200, 800
    x = rng.normal(size=(n_old + n_new, len(FEATURE_NAMES))).astype(np.float32)
    t = T0 + DAY * np.r_[rng.uniform(0, 100, n_old), rng.uniform(200, 300, n_new)]
    gap = np.r_[np.full(n_old, 5.0), np.full(n_new, 20.0)]
    config = TimingModelConfig(max_iter=30, min_samples_leaf=20, recency_half_life_days=20.0)
    weighted = TimingModel.fit(x, gap, config, times=t).predict_quantiles(x[:50])
    plain = TimingModel.fit(x, gap, replace(config, recency_half_life_days=None), times=t)
    assert np.median(weighted[:, 1]) > 15.0
    assert np.median(plain.predict_quantiles(x[:50])[:, 1]) < 10.0


def test_calibration_recentres_the_median_on_later_rows() -> None:
    """Habits drifted after training (gaps 10 -> 14 days): the median follows, per bucket."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2400, len(FEATURE_NAMES))).astype(np.float32)
    x[:, FEATURE_NAMES.index("log_count")] = np.log1p(rng.integers(1, 40, 2400))
    noise = np.exp(0.2 * rng.normal(size=2400))
    config = TimingModelConfig(max_iter=30, min_samples_leaf=20)
    model = TimingModel.fit(x[:1200], 10.0 * noise[:1200], config)
    later = 14.0 * noise[1200:]
    model.calibrate(x[1200:], later)
    q = model.predict_quantiles(x[1200:])
    assert np.mean(later < q[:, 1]) == pytest.approx(0.5, abs=0.05)
    assert np.all(model.offsets.table[:, 1] > 0.2)  # log(14 / 10) = 0.34
