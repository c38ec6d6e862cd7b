"""What serving needs of the next-basket ranker, and nothing of training: its bundle files
and the ONNX scorer. Kept apart so the edge never imports scikit-learn or the evaluation
harness to serve (they cost an HTTP worker ~150 MB and a second of start-up)."""

from __future__ import annotations

import numpy as np

from models.runtime import inference_session

ONNX_FILE = "nbr_ranker.onnx"
STATS_FILE = "nbr_item_stats.npz"
META_FILE = "nbr_ranker.json"
INPUT_NAME = "features"
# Output holding the (n, 2) class probabilities; column 1 is the ranking score.
PROBABILITY_OUTPUT = "probabilities"


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
