"""Paired bootstrap over test users: known differences are covered, clear wins exclude 0."""

from __future__ import annotations

import numpy as np
import pytest

from models.evaluation.bootstrap import paired_bootstrap


def test_constant_difference_is_exact() -> None:
    rng = np.random.default_rng(0)
    b = [rng.random(50), rng.random(80)]
    a = [x + 0.1 for x in b]
    out = paired_bootstrap(a, b, n_resamples=200)
    assert out["difference"] == pytest.approx(0.1)
    assert out["ci"] == pytest.approx([0.1, 0.1])
    assert len(out["per_split"]) == 2


def test_clearly_better_method_has_interval_above_zero() -> None:
    rng = np.random.default_rng(1)
    b = [rng.random(400) * 0.4 for _ in range(3)]
    a = [x + 0.05 + rng.normal(0, 0.05, len(x)) for x in b]
    out = paired_bootstrap(a, b)
    assert 0.0 < out["ci"][0] < 0.05 < out["ci"][1]
    assert out["relative_ci"][0] > 0.0


def test_interval_covers_the_true_difference_about_95_percent_of_the_time() -> None:
    true_diff, covered, runs = 0.02, 0, 200
    for seed in range(runs):
        rng = np.random.default_rng(100 + seed)
        b = [rng.random(150)]
        a = [b[0] + true_diff + rng.normal(0, 0.1, 150)]
        lo, hi = paired_bootstrap(a, b, n_resamples=300, seed=seed)["ci"]
        covered += lo <= true_diff <= hi
    assert 0.88 <= covered / runs <= 0.99


def test_users_with_an_empty_target_are_left_out() -> None:
    a = [np.array([0.5, np.nan, 0.7])]
    b = [np.array([0.2, np.nan, 0.4])]
    out = paired_bootstrap(a, b, n_resamples=100)
    assert out["per_split"][0]["users"] == 2
    assert out["difference"] == pytest.approx(0.3)


def test_users_shared_by_splits_widen_the_interval_of_the_mean() -> None:
    # Five "splits" that are the same 300 users: one sample seen five times. Resampled
    # as independent splits the interval shrinks by ~sqrt(5); clustered by user it must
    # stay that of one split.
    rng = np.random.default_rng(7)
    b1 = rng.random(300) * 0.4
    a1 = b1 + rng.normal(0.02, 0.1, 300)
    users = np.arange(300)
    one = paired_bootstrap([a1], [b1], n_resamples=400)
    shared = paired_bootstrap([a1] * 5, [b1] * 5, n_resamples=400, users_per_split=[users] * 5)
    naive = paired_bootstrap([a1] * 5, [b1] * 5, n_resamples=400)
    width = [x["ci"][1] - x["ci"][0] for x in (one, shared, naive)]
    assert shared["difference"] == pytest.approx(one["difference"])
    assert width[1] == pytest.approx(width[0], rel=0.2)
    assert width[2] < 0.6 * width[1]
    assert shared["distinct_users"] == 300


def test_one_split_overall_and_per_split_intervals_are_the_same_resample() -> None:
    rng = np.random.default_rng(3)
    b = rng.random(200)
    a = b + rng.normal(0.01, 0.1, 200)
    out = paired_bootstrap([a], [b], n_resamples=300, seed=5)
    assert out["ci"] == out["per_split"][0]["ci"]  # type: ignore[index]
