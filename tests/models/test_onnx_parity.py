"""ONNX Runtime must give what scikit-learn gives, on rows the model did not train on."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier
from threadpoolctl import threadpool_limits

from models import onnx_export
from models.features.timing import FEATURE_NAMES
from models.onnx_export import ParityError, check_parity
from models.runtime import run as run_session
from models.segments.model import DISTANCE_OUTPUT, LABEL_OUTPUT, SegmentModel
from models.timing.model import TimingModel, TimingModelConfig


@pytest.fixture(scope="module")
def rows() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3000, len(FEATURE_NAMES))).astype(np.float32)
    # The count column takes the exact values the features module produces, so the
    # per-history calibration buckets are exercised right at their edges.
    count = rng.integers(1, 40, size=3000)
    x[:, FEATURE_NAMES.index("log_count")] = np.log1p(count).astype(np.float32)
    elapsed = rng.choice([0.0, 0.5, 3.0, 7.0, 20.0, 30.0, 90.0, 200.0], size=3000)
    x[:, FEATURE_NAMES.index("log_elapsed_days")] = np.log1p(elapsed).astype(np.float32)
    gap = np.exp(2.0 + 0.5 * x[:, 1] + 0.3 * rng.normal(size=3000) / np.sqrt(count))
    return x, gap


def test_timing_onnx_matches_sklearn_on_held_out_rows(rows: tuple[np.ndarray, np.ndarray]) -> None:
    x, gap = rows
    config = TimingModelConfig(max_iter=30, min_samples_leaf=20)
    model = TimingModel.fit(x[:2000], gap[:2000], config, horizon_days=12.0)
    model.calibrate(x[2000:2500], gap[2000:2500])
    # A different shift in every calibration cell (500 rows leave most cells to the pooled
    # shift), so a row that ONNX put in another cell than numpy would show.
    cells = model.offsets.table.shape
    model.offsets = replace(model.offsets, table=np.random.default_rng(3).normal(0, 0.3, cells))
    held_out = x[2500:]
    onnx_q = run_session(onnx_export.session(model.to_onnx()), held_out)
    report = check_parity(model.predict_quantiles(held_out), onnx_q)
    assert onnx_q.shape == (500, 3)
    assert report.mismatch_fraction == 0.0 and report.max_abs_diff < 1e-3
    assert len(np.unique(model.offsets.bucket_of(held_out))) > 20
    # Capped at the horizon in both, and the cap is reached.
    assert onnx_q.max() <= 12.0 and (model.predict_quantiles(held_out) == 12.0).any()


def test_segments_onnx_matches_sklearn() -> None:
    rng = np.random.default_rng(1)
    x = np.abs(rng.normal(2.0, 1.0, size=(400, 5))).astype(np.float32)
    model = SegmentModel.fit(x[:300], n_clusters=4)
    sess = onnx_export.session(model.to_onnx())
    held_out = x[300:]
    labels = run_session(sess, held_out, LABEL_OUTPUT).ravel()
    np.testing.assert_array_equal(labels, model.predict(held_out))
    distances = run_session(sess, held_out, DISTANCE_OUTPUT)
    check_parity(model.pipeline.transform(held_out), distances)


def test_classifier_scores_and_top_k_order_match() -> None:
    """The ranker's case: per-shopper candidate scores, top-k order must not change."""
    rng = np.random.default_rng(2)
    x = rng.normal(size=(2000, 6)).astype(np.float32)
    y = (x[:, 0] + 0.5 * x[:, 1] + rng.normal(scale=0.5, size=2000) > 0).astype(int)
    with threadpool_limits(limits=1, user_api="openmp"):  # fast on shared cores
        clf = HistGradientBoostingClassifier(max_iter=30).fit(x[:1500], y[:1500])
    proto = onnx_export.to_onnx_float32(clf, 6, options={type(clf): {"zipmap": False}})
    held_out = x[1500:]
    probs = run_session(onnx_export.session(proto), held_out, "probabilities")[:, 1]
    groups = np.repeat(np.arange(50), 10)  # 50 shoppers x 10 candidates
    report = check_parity(clf.predict_proba(held_out)[:, 1], probs, groups=groups, k=5)
    assert report.topk_same is True


def test_parity_check_catches_disagreement() -> None:
    ref = np.linspace(0, 1, 100)
    with pytest.raises(ParityError, match="differ beyond tolerance"):
        check_parity(ref, ref + 0.01)
    swapped = ref.copy()
    swapped[[98, 99]] = swapped[[99, 98]]  # same values overall, top-2 order flipped
    with pytest.raises(ParityError):
        check_parity(ref, swapped, groups=np.zeros(100), k=2, max_mismatch_fraction=0.05)
