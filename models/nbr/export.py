"""``train_and_export``: the next-basket part of ``python -m models train``.

Trains the production ranker (:mod:`models.nbr.train`), checks ONNX Runtime against
scikit-learn on the held-out users' candidate rows (scores and per-shopper top-10
order, via the shared :mod:`models.onnx_export` parity check) and writes the artifacts
the bundle ships: ``nbr_ranker.onnx``, its ``nbr_ranker.json`` sidecar and
``nbr_item_stats.npz``.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from models import onnx_export
from models.datasets.base import BasketDataset
from models.evaluation.protocol import COMPLETEJOURNEY_MIN_ITEM_COUNT
from models.nbr.onnx_export import export_ranker
from models.nbr.ranker import build_candidate_rows
from models.nbr.scoring import OnnxRanker
from models.nbr.train import train_ranker, write_artifacts

logger = logging.getLogger(__name__)

# Top-k whose order must agree between ONNX Runtime and scikit-learn per shopper: the
# length of the list a kiosk shows.
PARITY_TOP_K = 10


def train_and_export(ds: BasketDataset, out_dir: str | Path) -> dict[str, object]:
    """Train, check parity, write artifacts; returns the summary for the manifest."""
    min_items = COMPLETEJOURNEY_MIN_ITEM_COUNT if ds.name == "completejourney" else None
    trained = train_ranker(ds, min_item_count=min_items)
    model = trained.model
    rows = build_candidate_rows(
        model.table, model.stats, trained.val_users, trained.now, model.config.candidates
    )
    reference = model.model.predict_proba(rows.features.astype(np.float32))[:, 1]
    onnx_bytes = export_ranker(model.model)
    parity = onnx_export.check_parity(
        reference, OnnxRanker(onnx_bytes).score(rows.features), groups=rows.users,
        k=PARITY_TOP_K,
    )
    paths = write_artifacts(
        model, ds.item_ids, out_dir, trained.summary, ds.category_names, parity.as_dict()
    )
    logger.info("next-basket ranker exported: %s", {k: str(v) for k, v in paths.items()})
    files = [p.name for p in paths.values()]
    return {**trained.summary, "parity": parity.as_dict(), "files": files}
