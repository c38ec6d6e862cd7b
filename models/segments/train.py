"""Fit segments on a basket dataset as of its last day, and describe the result."""

from __future__ import annotations

import logging

import numpy as np

from models.datasets.base import BasketDataset
from models.segments.model import SegmentModel, feature_matrix, shopper_states
from models.timing.data import basket_table

logger = logging.getLogger(__name__)


class SegmentDataError(ValueError):
    """The dataset cannot be segmented (no timestamps)."""


def fit_segments(ds: BasketDataset, seed: int = 0) -> SegmentModel:
    """Replay every basket into shopper states and cluster them as of the last timestamp."""
    return fit_segments_with_features(ds, seed)[0]


def fit_segments_with_features(ds: BasketDataset, seed: int = 0) -> tuple[SegmentModel, np.ndarray]:
    """:func:`fit_segments`, also returning the shoppers' feature rows (for parity checks)."""
    if not ds.has_timestamps:
        raise SegmentDataError(f"dataset {ds.name!r} has no timestamps: recency is undefined")
    users, ts, spend, _ = basket_table(ds)
    keep = ~np.isnan(ts)
    states = shopper_states(users[keep], ts[keep], spend[keep])
    features, _ = feature_matrix(states, float(np.nanmax(ts)))
    return SegmentModel.fit(features, seed=seed), features


def format_summary(model: SegmentModel) -> str:
    header = (
        f"{'cluster':>7s}  {'segment':20s} {'shoppers':>8s} {'recency d':>9s} "
        f"{'tenure d':>8s} {'trips/30d':>9s} {'$/trip':>7s} {'$/30d':>7s}"
    )
    lines = [header]
    for c in sorted(model.summary(), key=lambda c: -c["spend_per_30d"]):
        lines.append(
            f"{c['cluster']:>7d}  {c['name']:20s} {c['shoppers']:>8d} {c['recency_days']:>9.1f} "
            f"{c['tenure_days']:>8.1f} {c['trips_per_30d']:>9.2f} {c['spend_per_trip']:>7.2f} "
            f"{c['spend_per_30d']:>7.2f}"
        )
    return "\n".join(lines)
