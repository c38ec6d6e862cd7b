"""The demo's and benchmark's cached store models are retrained after a feature change."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from edge_agent.store_training import TRAINED_FOR, TRAINED_MARKER, trained_for_this_code


def test_models_trained_for_other_feature_code_are_not_reused(tmp_path: Path) -> None:
    models = tmp_path / "models"
    assert not trained_for_this_code(models)  # nothing trained yet
    models.mkdir()
    (models / TRAINED_MARKER).write_text(json.dumps({"trained_for": TRAINED_FOR}))
    assert trained_for_this_code(models)
    old = TRAINED_FOR.replace("timing:", "timing:old-")
    (models / TRAINED_MARKER).write_text(json.dumps({"trained_for": old}))
    assert not trained_for_this_code(models)
    (models / TRAINED_MARKER).write_text("{}")  # a marker from before the feature code was kept
    assert not trained_for_this_code(models)
    (models / TRAINED_MARKER).write_text("not json")
    assert not trained_for_this_code(models)


def test_timing_history_is_the_simulators_shoppers_over_more_than_a_year() -> None:
    from edge_agent.demo.catalog import CATEGORIES
    from edge_agent.store_training import simulated_history

    ds = simulated_history(seed=3, shoppers=12, days=400)
    span_days = (ds.ts.max() - ds.ts.min()) / 86400
    assert 395 <= span_days <= 400
    assert ds.category_names is not None
    assert set(ds.category_names) <= {c.name for c in CATEGORIES}
    starts = ds.basket_starts()
    baskets_per_shopper = np.bincount(ds.user[starts[:-1]])
    assert len(baskets_per_shopper) == 12 and baskets_per_shopper.min() >= 20
