"""The edge's purchase-timing entry point: incremental state in, predictions out.

    bundle = verify_bundle(path, public_key)            # models.bundle
    timing = TimingPredictor.from_bundle(bundle)
    timing.predict([(pair_state, "FLUID MILK PRODUCTS")], shopper_state, now_ts)

``PairState`` / ``ShopperState`` (``models.features``) are what the edge keeps per
shopper x category and per shopper, updated on every POS transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import onnxruntime as ort

from models.bundle.sidecar import load_sidecar
from models.bundle.verify import VerifiedBundle
from models.features.segments import ShopperState
from models.features.timing import (
    FEATURE_NAMES,
    FEATURE_SCHEMA_VERSION,
    CategoryPrior,
    PairState,
    timing_features,
)
from models.runtime import run
from models.timing.predict import TimingPrediction, predictions

logger = logging.getLogger(__name__)

MODEL_NAME = "timing"


class TimingPredictor:
    """ONNX session + category priors of one bundle."""

    def __init__(self, session: ort.InferenceSession, sidecar: dict[str, object]) -> None:
        self.session = session
        priors = sidecar.get("category_priors", {})
        assert isinstance(priors, dict)
        self.priors = {name: CategoryPrior(**p) for name, p in priors.items()}
        default = sidecar.get("default_category_prior", {})
        assert isinstance(default, dict)
        self.default_prior = CategoryPrior(**default)

    @classmethod
    def from_bundle(cls, bundle: VerifiedBundle) -> TimingPredictor:
        sidecar = load_sidecar(bundle, MODEL_NAME, FEATURE_SCHEMA_VERSION, FEATURE_NAMES)
        return cls(bundle.onnx_session(f"{MODEL_NAME}.onnx"), sidecar)

    def prior(self, category: str) -> CategoryPrior:
        """The category's training-period statistics; unknown categories get the overall."""
        return self.priors.get(category, self.default_prior)

    def predict(
        self, pairs: Sequence[tuple[PairState, str]], shopper: ShopperState, now_ts: float
    ) -> list[TimingPrediction]:
        """Predictions at ``now_ts`` for one shopper's (state, category name) pairs, each
        with >= 1 purchase; ``shopper`` is that shopper's trip state now."""
        if not pairs:
            return []
        return self.predictions_from(self.score(self.features(pairs, shopper, now_ts)))

    # `predict` in three steps, for a caller that runs the ONNX part elsewhere (the edge: on
    # a model thread, so a slow model cannot hold its event loop).
    def features(self, pairs: Sequence[tuple[PairState, str]], shopper: ShopperState,
                 now_ts: float) -> np.ndarray:
        return timing_features([(state, self.prior(cat)) for state, cat in pairs], shopper,
                               now_ts)

    def score(self, features: np.ndarray) -> np.ndarray:
        return run(self.session, features)

    @staticmethod
    def predictions_from(outputs: np.ndarray) -> list[TimingPrediction]:
        return predictions(outputs)
