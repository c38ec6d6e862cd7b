"""A bundle's smoke test times the two halves of a model call apart: the features, which an
HTTP worker computes on its event loop, within the loop's budget; the ONNX graph within the
model budget, and on the event loop too only if it is fast enough for it."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from edge_agent.modeling.loaded import EVENT_LOOP_BUDGET_S, LoadedModels, SmokeTestFailed
from models.features.nbr_state import ShopperState
from models.nbr.serve import NbrServingModel
from tests.model_bundles import Bundles, slow_ranker


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


def test_a_fast_graph_is_served_on_the_event_loop_a_slow_one_on_a_thread(
        bundles: Bundles, tmp_path: Path) -> None:
    real = NbrServingModel.load(bundles.models_dir)
    assert _models(real).smoke_test().on_loop == {"nbr"}
    # Finite answers within the model budget, but too slow to hold every request for.
    slow_dir = tmp_path / "slow"
    shutil.copytree(bundles.models_dir, slow_dir)
    (slow_dir / "nbr_ranker.onnx").write_bytes(slow_ranker(layers=40, width=512))
    slow = _models(NbrServingModel.load(slow_dir)).smoke_test(budget_s=30.0)
    assert slow.on_loop == frozenset() and slow.on_loop_key("nbr") is None
