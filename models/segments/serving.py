"""The edge's segment entry point: a shopper's state in, a segment name out.

    assigner = SegmentAssigner.from_bundle(verify_bundle(path, public_key))
    assigner.assign([shopper_state], now_ts)   # -> ["loyal"]

A shopper is named by the naming rules (``models.segments.naming``) applied to their own RFM
values, against the thresholds of the population the bundle was trained on. Their KMeans
cluster's name is the name of the cluster's average shopper: on a short history every
centroid looks new, and a regular who shops twice a week was called "new" along with
everyone else. The clusters still describe the population (the bundle's summary).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from models.bundle.sidecar import load_sidecar
from models.bundle.verify import VerifiedBundle
from models.features.segments import (
    FEATURE_NAMES,
    FEATURE_SCHEMA_VERSION,
    ShopperState,
    raw_values,
    segment_features,
)
from models.segments.naming import PopulationThresholds, name_values

MODEL_NAME = "segments"


class SegmentAssigner:
    def __init__(self, thresholds: PopulationThresholds, cluster_names: list[str]) -> None:
        self.thresholds = thresholds
        self.cluster_names = cluster_names

    @classmethod
    def from_bundle(cls, bundle: VerifiedBundle) -> SegmentAssigner:
        sidecar = load_sidecar(bundle, MODEL_NAME, FEATURE_SCHEMA_VERSION, FEATURE_NAMES)
        return cls(PopulationThresholds.from_sidecar(sidecar), list(sidecar["cluster_names"]))

    def assign(self, shoppers: Sequence[ShopperState], now_ts: float) -> list[str]:
        """Segment name of each shopper (each must have at least one trip)."""
        if not shoppers:
            return []
        raw = raw_values(np.vstack([segment_features(s, now_ts) for s in shoppers]))
        return [name_values(row, self.thresholds) for row in raw]
