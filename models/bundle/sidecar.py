"""Read a model's JSON sidecar from a verified bundle and check its feature schema."""

from __future__ import annotations

import json
from typing import Any

from models.bundle.errors import FeatureSchemaError, ManifestError
from models.bundle.verify import VerifiedBundle


def load_sidecar(
    bundle: VerifiedBundle, model: str, schema_version: int, feature_names: tuple[str, ...]
) -> dict[str, Any]:
    """``<model>.json`` from ``bundle``, refused unless it matches this code's features."""
    try:
        doc = json.loads(bundle.read(f"{model}.json"))
    except json.JSONDecodeError as exc:
        raise ManifestError(f"{model}.json in bundle {bundle.version} is not JSON") from exc
    got = doc.get("feature_schema_version")
    if got != schema_version or doc.get("feature_names") != list(feature_names):
        raise FeatureSchemaError(
            f"{model} model in bundle {bundle.version} uses feature schema {got}; "
            f"this code computes schema {schema_version}"
        )
    return doc
