"""The held-out evaluation's timing half on a model whose answer is known: a constant
80 % interval (2, 5, 10 days) against hand-made labels, one inside the window and one
capped at it (no purchase in the held-out weeks)."""

from __future__ import annotations

import json

import numpy as np
import onnx
from onnx import TensorProto, helper

from cloud_sync.retrain.evaluate import score
from cloud_sync.retrain.holdout import Basket, HeldOutShopper
from models.features.timing import FEATURE_NAMES

DAY = 86_400.0
WINDOW = 28.0
QUANTILES = (2.0, 5.0, 10.0)


def constant_timing_model() -> bytes:
    """features [N, F] -> quantiles [N, 3]: 0 x features + (2, 5, 10)."""
    n = len(FEATURE_NAMES)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["features", "zeros"], ["product"]),
         helper.make_node("Add", ["product", "quantiles"], ["days"])],
        "constant-timing",
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, [None, n])],
        [helper.make_tensor_value_info("days", TensorProto.FLOAT, [None, 3])],
        [helper.make_tensor("zeros", TensorProto.FLOAT, [n, 3], [0.0] * (n * 3)),
         helper.make_tensor("quantiles", TensorProto.FLOAT, [3], list(QUANTILES))])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    return model.SerializeToString()


def shopper(cutoff: float) -> HeldOutShopper:
    history = [Basket(["milk", "soap"], cutoff - d * DAY, ["DAIRY", "HOME"], [1.0, 1.0], 4.0)
               for d in (30, 20, 10)]
    return HeldOutShopper("alice", history, ["milk"], cutoff + 3 * DAY,
                          {"DAIRY": 3.0, "HOME": WINDOW})


def test_timing_error_and_coverage_capped_at_the_window() -> None:
    cutoff = 1_780_000_000.0
    sidecar = {"category_priors": {}, "default_category_prior": {
        "median_gap_days": 10.0, "repeat_share": 0.5}}
    files = {"timing.onnx": constant_timing_model(), "timing.json": json.dumps(sidecar).encode()}
    result = score(files, [shopper(cutoff)], cutoff, WINDOW)
    assert result.recall is None and result.ndcg is None  # no ranker in these files
    assert result.timing_abs_error is not None and result.timing_covered is not None
    # DAIRY: label 3, median 5 -> error 2, inside [2, 10]; HOME: not bought within 28 days,
    # median 5 -> error 23, and the interval stops at 10 < 28: not covered.
    np.testing.assert_allclose(result.timing_abs_error, [12.5], atol=1e-4)
    np.testing.assert_allclose(result.timing_covered, [0.5])
