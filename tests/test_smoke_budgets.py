"""A bundle's smoke test times the two halves of a model call apart: the features, which an
HTTP worker computes on its event loop, within the loop's budget; the ONNX graph, which
runs on a model thread, within the model budget."""

from __future__ import annotations

import time

import numpy as np
import pytest

from edge_agent.modeling.loaded import EVENT_LOOP_BUDGET_S, LoadedModels, SmokeTestFailed
from models.features.nbr_state import ShopperState
from models.nbr.serve import NbrServingModel
from tests.model_bundles import Bundles


class _SlowFeatures(NbrServingModel):
    """The real ranker, but its features take longer than the event loop may wait."""

    def candidates_of(self, state: ShopperState, now: float) -> tuple[np.ndarray, np.ndarray]:
        time.sleep(EVENT_LOOP_BUDGET_S * 1.5)
        return super().candidates_of(state, now)


def _models(ranker: NbrServingModel) -> LoadedModels:
    return LoadedModels("test-1", "test", {}, timing=None, segments=None, ranker=ranker)


def test_the_real_ranker_passes_and_slow_features_are_refused(bundles: Bundles) -> None:
    real = NbrServingModel.load(bundles.models_dir)
    _models(real).smoke_test()
    slow = _SlowFeatures(real.ranker, real.stats, real.item_ids, real.candidates,
                         real.category_names)
    with pytest.raises(SmokeTestFailed, match="ranker features took"):
        _models(slow).smoke_test()
