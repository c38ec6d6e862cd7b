"""Train the production ranker on a whole dataset and write its serving artifacts.

Artifacts (one directory; M2's bundle signs and ships them as they are):

- ``nbr_ranker.onnx``    — the tree model, float32 features in (see FEATURE_NAMES);
- ``nbr_item_stats.npz`` — popularity and co-purchase tables the features read;
- ``nbr_ranker.json``    — feature schema version and names, candidate settings, the item
  vocabulary (product id of each item code), the category vocabulary and a training
  summary.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from models.datasets.base import BasketDataset
from models.evaluation.protocol import filter_dataset, make_task, mask_targets, random_splits
from models.features.nbr import FEATURE_NAMES, FEATURE_SCHEMA_VERSION
from models.nbr.base import FitData
from models.nbr.onnx_export import export_ranker
from models.nbr.ranker import NbrRanker, RankerConfig
from models.nbr.scoring import META_FILE, ONNX_FILE, STATS_FILE

logger = logging.getLogger(__name__)

# Users held out for early stopping when training for production (no test users here:
# the offline figures come from `evaluate`).
VALIDATION_SHARE = 0.1


@dataclass(frozen=True)
class TrainedRanker:
    """A production ranker, what it was trained on, and its held-out users."""

    model: NbrRanker
    summary: dict[str, object]
    val_users: np.ndarray
    now: np.ndarray  # request time per user code used for features (target basket time)


def train_ranker(
    ds: BasketDataset,
    config: RankerConfig | None = None,
    min_item_count: int | None = None,
    seed: int = 0,
) -> TrainedRanker:
    """Fit the ranker on all eligible users (a seeded 10% drive early stopping)."""
    filtered = filter_dataset(ds, min_item_count)
    task = make_task(filtered)
    (split,) = random_splits(
        task.users, seeds=[seed], shares=(1.0 - VALIDATION_SHARE, VALIDATION_SHARE, 0.0)
    )
    model = NbrRanker(config)
    model.fit(
        FitData(
            task=task,
            train_users=split.train,
            val_users=split.val,
            targets=mask_targets(task.targets, np.concatenate([split.train, split.val])),
        )
    )
    summary = {
        "dataset": filtered.summary(),
        "train_users": len(split.train),
        "val_users": len(split.val),
        "trees": int(model.model.n_iter_),
    }
    return TrainedRanker(model, summary, split.val, task.target_ts)


def write_artifacts(
    model: NbrRanker,
    item_ids: list[str],
    out_dir: str | Path,
    training_summary: dict[str, object] | None = None,
    category_names: list[str] | None = None,
    parity: dict[str, object] | None = None,
) -> dict[str, Path]:
    """Write the three serving artifacts; returns their paths by role."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"onnx": out / ONNX_FILE, "stats": out / STATS_FILE, "meta": out / META_FILE}
    paths["onnx"].write_bytes(export_ranker(model.model))
    model.stats.save(paths["stats"])
    meta = {
        "name": "nbr_ranker",
        "feature_schema_version": FEATURE_SCHEMA_VERSION,
        "feature_names": list(FEATURE_NAMES),
        "candidates": asdict(model.config.candidates),
        "item_ids": list(item_ids),
        "category_names": list(category_names or []),
        "training": training_summary or {},
        "parity": parity or {},
    }
    paths["meta"].write_text(json.dumps(meta))
    logger.info("wrote ranker artifacts to %s", out)
    return paths
