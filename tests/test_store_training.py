"""The demo's and benchmark's cached store models are retrained after a feature change."""

from __future__ import annotations

import json
from pathlib import Path

from edge_agent.features.shopper import STATE_VERSION
from edge_agent.store_training import TRAINED_MARKER, trained_for_this_code


def test_models_trained_for_other_feature_code_are_not_reused(tmp_path: Path) -> None:
    models = tmp_path / "models"
    assert not trained_for_this_code(models)  # nothing trained yet
    models.mkdir()
    (models / TRAINED_MARKER).write_text(json.dumps({"feature_code": STATE_VERSION}))
    assert trained_for_this_code(models)
    old = STATE_VERSION.replace("timing:", "timing:old-")
    (models / TRAINED_MARKER).write_text(json.dumps({"feature_code": old}))
    assert not trained_for_this_code(models)
    (models / TRAINED_MARKER).write_text("{}")  # a marker from before the feature code was kept
    assert not trained_for_this_code(models)
    (models / TRAINED_MARKER).write_text("not json")
    assert not trained_for_this_code(models)
