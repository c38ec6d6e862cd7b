"""The edge's segment entry point: a shopper's state in, a segment name out.

    assigner = SegmentAssigner.from_bundle(verify_bundle(path, public_key))
    assigner.assign([shopper_state], now_ts)   # -> ["loyal"]
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import onnxruntime as ort

from models import onnx_export
from models.bundle.sidecar import load_sidecar
from models.bundle.verify import VerifiedBundle
from models.features.segments import (
    FEATURE_NAMES,
    FEATURE_SCHEMA_VERSION,
    ShopperState,
    segment_features,
)
from models.segments.model import LABEL_OUTPUT

MODEL_NAME = "segments"


class SegmentAssigner:
    def __init__(self, session: ort.InferenceSession, cluster_names: list[str]) -> None:
        self.session = session
        self.cluster_names = cluster_names

    @classmethod
    def from_bundle(cls, bundle: VerifiedBundle) -> SegmentAssigner:
        sidecar = load_sidecar(bundle, MODEL_NAME, FEATURE_SCHEMA_VERSION, FEATURE_NAMES)
        return cls(bundle.onnx_session(f"{MODEL_NAME}.onnx"), list(sidecar["cluster_names"]))

    def assign(self, shoppers: Sequence[ShopperState], now_ts: float) -> list[str]:
        """Segment name of each shopper (each must have at least one trip)."""
        if not shoppers:
            return []
        x = np.vstack([segment_features(s, now_ts) for s in shoppers])
        labels = onnx_export.run(self.session, x, LABEL_OUTPUT).ravel()
        return [self.cluster_names[int(i)] for i in labels]
