"""Segments: RFM state, rule-based names that match what a store manager would call them."""

from __future__ import annotations

import math

import numpy as np
import pytest

from models.features.segments import (
    FEATURE_NAMES,
    SECONDS_PER_DAY,
    ShopperState,
    raw_values,
    segment_features,
)
from models.segments.model import SegmentModel
from models.segments.naming import PopulationThresholds, name_centroid
from models.segments.train import fit_segments
from models.timing.synthetic import generate

DAY = SECONDS_PER_DAY
NOW = 1_500_000_000.0


def _shopper(first_days_ago: float, last_days_ago: float, trips: int, spend: float) -> ShopperState:
    state = ShopperState()
    for t in np.linspace(NOW - first_days_ago * DAY, NOW - last_days_ago * DAY, trips):
        state.add_trip(float(t), spend)
    return state


def _population(rng: np.random.Generator) -> tuple[np.ndarray, list[str]]:
    """Shoppers of known kinds: (first seen, last seen days ago, trips, spend per trip)."""
    u, n = rng.uniform, rng.integers
    kinds = {
        "champion": lambda: (360, u(0, 3), int(n(90, 120)), u(60, 90)),
        "regular": lambda: (360, u(0, 6), int(n(40, 60)), u(20, 30)),
        "occasional": lambda: (360, u(2, 15), int(n(8, 14)), u(8, 14)),
        "gone": lambda: (360, u(150, 250), int(n(3, 8)), u(8, 14)),
        "newcomer": lambda: (u(10, 30), u(0, 5), int(n(2, 5)), u(20, 40)),
    }
    rows, labels = [], []
    for kind, draw in kinds.items():
        for _ in range(40):
            first, last, trips, spend = draw()
            rows.append(segment_features(_shopper(first, last, trips, spend), NOW))
            labels.append(kind)
    return np.vstack(rows), labels


def test_features_from_incremental_state() -> None:
    state = _shopper(first_days_ago=60, last_days_ago=10, trips=11, spend=20.0)
    raw = dict(zip(FEATURE_NAMES, raw_values(segment_features(state, NOW)), strict=True))
    assert raw["log_recency_days"] == pytest.approx(10.0, rel=1e-5)
    assert raw["log_tenure_days"] == pytest.approx(60.0, rel=1e-5)
    assert raw["log_trips_per_30d"] == pytest.approx(11 / 60 * 30, rel=1e-5)
    assert raw["log_spend_per_trip"] == pytest.approx(20.0, rel=1e-5)
    assert state.mean_trip_gap_days() == pytest.approx(5.0)
    assert ShopperState.from_dict(state.to_dict()) == state


def test_a_brand_new_shopper_does_not_get_an_infinite_rate() -> None:
    state = _shopper(first_days_ago=0, last_days_ago=0, trips=1, spend=30.0)
    x = segment_features(state, NOW)
    assert np.isfinite(x).all() and math.expm1(x[2]) == pytest.approx(1.0)  # 1 trip / 30 d


def test_segments_are_named_sensibly() -> None:
    features, kinds = _population(np.random.default_rng(0))
    model = SegmentModel.fit(features, n_clusters=5)
    names = model.name_of(model.predict(features))
    by_kind: dict[str, set[str]] = {}
    for kind, name in zip(kinds, names, strict=True):
        by_kind.setdefault(kind, set()).add(name)
    assert by_kind["champion"] == {"champions"}
    assert by_kind["gone"] <= {"hibernating", "at risk"}
    assert by_kind["newcomer"] == {"new"}
    assert by_kind["regular"] <= {"loyal", "champions"}


@pytest.mark.parametrize(
    ("centroid", "expected"),
    [
        ((2, 300, 12, 60, 720), "champions"),
        ((3, 300, 6, 20, 120), "loyal"),
        ((5, 300, 2, 40, 80), "potential loyalists"),
        ((6, 300, 2, 10, 20), "occasional"),
        ((4, 20, 3, 30, 90), "new"),
        ((45, 300, 4, 60, 240), "at risk"),
        ((45, 300, 1, 10, 10), "hibernating"),
        ((120, 300, 8, 60, 480), "hibernating"),
    ],
)
def test_naming_rules(centroid: tuple[float, ...], expected: str) -> None:
    t = PopulationThresholds(
        trips_median=4.0, trips_q75=8.0, value_median=100.0, value_q75=250.0,
        spend_per_trip_median=25.0,
    )
    assert name_centroid(np.array(centroid, dtype=float), t) == expected


def test_fit_on_a_basket_dataset_describes_every_cluster() -> None:
    model = fit_segments(generate(n_users=60, n_categories=5, days=200, seed=3))
    summary = model.summary()
    assert sum(c["shoppers"] for c in summary) == 60
    assert all(c["name"] for c in summary)
    side = model.sidecar()
    assert side["feature_names"] == list(FEATURE_NAMES)
    assert len(side["cluster_names"]) == len(summary)


@pytest.mark.parametrize("shoppers", [25, 40, 60])
def test_a_small_store_trains_segments(shoppers: int, tmp_path) -> None:
    """A few dozen shoppers over four weeks (a new store, the demo's smallest): a shopper can
    sit on a cluster's centre, where ONNX's float32 distance is ~0.002 or NaN for
    scikit-learn's 0.0. That noise is tolerated, the labels still agree, and the summary is
    valid JSON (training stopped on a ParityError or a NaN in JSON here)."""
    from edge_agent.store_training import simulated_history
    from models.training import train_segments

    report = train_segments(simulated_history(seed=1, shoppers=shoppers, days=28), tmp_path)
    assert report["parity"]["label_agreement"] == 1.0
    assert math.isfinite(report["parity"]["max_abs_diff"])
    assert (tmp_path / "segments.onnx").exists()


def test_parity_counts_a_nan_score_as_a_mismatch() -> None:
    from models import onnx_export

    reference = np.ones((2000, 3))
    scores = reference.copy()
    scores[0, 1] = np.nan
    scores[1, 2] = np.nan
    scores[2, 0] = np.nan
    with pytest.raises(onnx_export.ParityError):
        onnx_export.check_parity(reference, scores)
