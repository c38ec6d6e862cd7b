"""Fit KMeans on standardised RFM features, name the clusters, export to ONNX."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx
from sklearn.cluster import KMeans
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from models import onnx_export
from models.features.segments import (
    FEATURE_NAMES,
    FEATURE_SCHEMA_VERSION,
    ShopperState,
    raw_values,
    segment_features,
)
from models.segments.naming import PopulationThresholds, name_centroid

logger = logging.getLogger(__name__)

# Enough clusters for each named segment to get at least one, few enough that each still
# describes a sizeable group of shoppers.
DEFAULT_CLUSTERS = 8
# KMeans restarts: a bad initialisation costs little to avoid at a few thousand shoppers.
N_INIT = 10
LABEL_OUTPUT = "label"
DISTANCE_OUTPUT = "scores"


@dataclass
class SegmentModel:
    pipeline: Pipeline
    thresholds: PopulationThresholds
    cluster_names: list[str]
    sizes: list[int] = field(default_factory=list)

    @classmethod
    def fit(
        cls, features: np.ndarray, n_clusters: int = DEFAULT_CLUSTERS, seed: int = 0
    ) -> SegmentModel:
        x = np.asarray(features, np.float32)
        k = min(n_clusters, len(np.unique(x, axis=0)))
        pipe = make_pipeline(StandardScaler(), KMeans(k, n_init=N_INIT, random_state=seed))
        # One OpenMP thread: KMeans' threads spin-wait on shared cores (see timing model).
        with threadpool_limits(limits=1, user_api="openmp"):
            labels = pipe.fit_predict(x)
        thresholds = PopulationThresholds.from_raw(raw_values(x))
        names = [name_centroid(c, thresholds) for c in raw_values(cls._centroids(pipe))]
        sizes = np.bincount(labels, minlength=k).tolist()
        logger.info("segments: %s", dict(zip(names, sizes, strict=True)))
        return cls(pipe, thresholds, names, sizes)

    @staticmethod
    def _centroids(pipe: Pipeline) -> np.ndarray:
        """Cluster centres in feature (log1p) units."""
        scaler: StandardScaler = pipe[0]
        return scaler.inverse_transform(pipe[-1].cluster_centers_)

    def predict(self, features: np.ndarray) -> np.ndarray:
        with threadpool_limits(limits=1, user_api="openmp"):
            return self.pipeline.predict(np.asarray(features, np.float32))

    def name_of(self, labels: np.ndarray) -> list[str]:
        return [self.cluster_names[int(i)] for i in labels]

    def to_onnx(self) -> onnx.ModelProto:
        return onnx_export.to_onnx_float32(self.pipeline, len(FEATURE_NAMES), name="segments")

    def summary(self) -> list[dict[str, Any]]:
        """Per cluster: name, size and centroid in raw units (for docs and the manifest)."""
        raw = raw_values(self._centroids(self.pipeline))
        units = ("recency_days", "tenure_days", "trips_per_30d", "spend_per_trip", "spend_per_30d")
        return [
            {"cluster": i, "name": n, "shoppers": s,
             **{u: round(float(v), 2) for u, v in zip(units, c, strict=True)}}
            for i, (n, s, c) in enumerate(zip(self.cluster_names, self.sizes, raw, strict=True))
        ]

    def sidecar(self) -> dict[str, Any]:
        """What the edge needs besides the ONNX file (written as ``segments.json``)."""
        return {
            "model": "segments",
            "feature_schema_version": FEATURE_SCHEMA_VERSION,
            "feature_names": list(FEATURE_NAMES),
            "outputs": {"label": LABEL_OUTPUT, "distances": DISTANCE_OUTPUT},
            "cluster_names": self.cluster_names,
            "thresholds": self.thresholds.as_dict(),
            "clusters": self.summary(),
        }


def shopper_states(
    users: np.ndarray, ts: np.ndarray, spend: np.ndarray
) -> dict[int, ShopperState]:
    """Replay baskets (user, epoch seconds, spend) in order into one state per shopper."""
    states: dict[int, ShopperState] = {}
    for u, t, s in zip(users.tolist(), ts.tolist(), spend.tolist(), strict=True):
        state = states.get(u)
        if state is None:
            state = states[u] = ShopperState()
        state.add_trip(t, s)
    return states


def feature_matrix(states: dict[int, ShopperState], now_ts: float) -> tuple[np.ndarray, list[int]]:
    users = sorted(u for u, s in states.items() if s.trips)
    if not users:
        return np.zeros((0, len(FEATURE_NAMES)), np.float32), []
    return np.vstack([segment_features(states[u], now_ts) for u in users]), users
