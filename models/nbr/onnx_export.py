"""Export the ranker's tree model to ONNX (float32 feature matrix in, probability out)."""

from __future__ import annotations

import logging
import warnings

from sklearn.ensemble import HistGradientBoostingClassifier

from models.features.nbr import FEATURE_NAMES
from models.nbr.scoring import INPUT_NAME

logger = logging.getLogger(__name__)

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

