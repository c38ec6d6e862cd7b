"""Export the ranker's tree model to ONNX (float32 feature matrix in, probability out)."""

from __future__ import annotations

import logging
import warnings

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier

from models.features.nbr import FEATURE_NAMES
from models.runtime import inference_session

logger = logging.getLogger(__name__)

INPUT_NAME = "features"
# Output holding the (n, 2) class probabilities; column 1 is the ranking score.
PROBABILITY_OUTPUT = "probabilities"
# Opsets onnxruntime >= 1.17 runs; ai.onnx.ml 3 has the TreeEnsemble ops skl2onnx emits.
TARGET_OPSET = {"": 17, "ai.onnx.ml": 3}


def export_ranker(model: HistGradientBoostingClassifier) -> bytes:
    """Serialized ONNX model of a fitted ranker classifier."""
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType

    if model.n_features_in_ != len(FEATURE_NAMES):
        raise ValueError(
            f"ranker has {model.n_features_in_} features, schema has {len(FEATURE_NAMES)}"
        )
    with warnings.catch_warnings():
        # skl2onnx 1.20 passes booleans where onnx expects ints in tree attributes; onnx
        # converts them and warns on every node. Not ours to fix, and harmless today.
        warnings.filterwarnings("ignore", category=DeprecationWarning, module="onnx")
        onx = to_onnx(
            model,
            initial_types=[(INPUT_NAME, FloatTensorType([None, len(FEATURE_NAMES)]))],
            options={id(model): {"zipmap": False}},
            target_opset=TARGET_OPSET,
        )
    onx.doc_string = "next-basket ranker; inputs: " + ",".join(FEATURE_NAMES)
    return onx.SerializeToString()


class OnnxRanker:
    """Scores candidate feature rows with onnxruntime (what the edge runs)."""

    def __init__(self, model_bytes: bytes) -> None:
        self._session = inference_session(model_bytes)

    def score(self, features: np.ndarray) -> np.ndarray:
        """Probability that each candidate is in the next basket (float32)."""
        out = self._session.run(
            [PROBABILITY_OUTPUT], {INPUT_NAME: np.ascontiguousarray(features, np.float32)}
        )[0]
        return np.asarray(out)[:, 1]
