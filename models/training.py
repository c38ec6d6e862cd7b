"""Train every model on one dataset and write the models directory a bundle is built from.

Layout written to ``out``: ``<model>.onnx`` plus a ``<model>.json`` sidecar (feature names,
``feature_schema_version``, priors, parity report, metrics) for timing, segments and — when
``models.nbr.export`` provides ``train_and_export(ds, out_dir) -> dict`` — the next-basket
ranker; and ``train_summary.json`` (training-data summary and headline offline metrics),
which ``models.bundle.build`` copies into the manifest. Each ONNX file is checked against
scikit-learn on held-out rows before it is written.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from models import onnx_export
from models.bundle.build import TRAIN_SUMMARY_FILE
from models.datasets.base import BasketDataset
from models.runtime import run as run_session
from models.segments.model import DISTANCE_OUTPUT, LABEL_OUTPUT
from models.segments.train import fit_segments_with_features
from models.timing.evaluate import TimingSplit, train_and_evaluate
from models.timing.model import TimingModelConfig

logger = logging.getLogger(__name__)


def _write(path: Path, doc: object) -> None:
    path.write_text(json.dumps(doc, indent=2, allow_nan=False) + "\n")


def train_timing(
    ds: BasketDataset, out: Path, split: TimingSplit | None = None,
    config: TimingModelConfig | None = None,
) -> dict[str, Any]:
    run = train_and_evaluate(ds, split, config)
    proto = run.model.to_onnx()
    x = run.holdout_features
    assert x is not None
    parity = onnx_export.check_parity(
        run.model.predict_quantiles(x), run_session(onnx_export.session(proto), x)
    )
    onnx_export.save(proto, out / "timing.onnx")
    _write(out / "timing.json", run.sidecar(parity=parity.as_dict()))
    return {**run.headline(), "parity": parity.as_dict()}


def train_segments(ds: BasketDataset, out: Path) -> dict[str, Any]:
    model, x = fit_segments_with_features(ds)
    proto = model.to_onnx()
    sess = onnx_export.session(proto)
    labels = run_session(sess, x, LABEL_OUTPUT).ravel()
    distances = run_session(sess, x, DISTANCE_OUTPUT)
    reference = model.pipeline.transform(x.astype(np.float32))
    # ONNX's KMeans computes distances as sqrt(|x|^2 - 2 x.c + |c|^2) in float32: near zero
    # (a shopper on a centre, common in a small store's few clusters) the cancellation
    # leaves ~sqrt(eps) * |x|, e.g. 0.002 where scikit-learn says 0.0. Tolerate exactly that
    # noise; the labels, which serving uses, must still agree (below).
    scale = float(np.abs(reference).max(initial=0.0))
    noise = 4.0 * float(np.sqrt(np.finfo(np.float32).eps)) * scale
    # Below zero by that noise, the square root is NaN: a distance of zero (serving reads
    # only the labels).
    distances = np.where(np.isnan(distances) & (reference <= noise), 0.0, distances)
    parity = onnx_export.check_parity(reference, distances,
                                      atol=max(onnx_export.DEFAULT_ATOL, noise))
    label_agreement = float((labels == model.predict(x)).mean())
    if label_agreement < 1.0 - onnx_export.DEFAULT_MAX_MISMATCH_FRACTION:
        raise onnx_export.ParityError(f"segment labels agree on only {label_agreement:.4%}")
    onnx_export.save(proto, out / "segments.onnx")
    report = {**parity.as_dict(), "label_agreement": label_agreement}
    _write(out / "segments.json", {**model.sidecar(), "parity": report})
    counts: dict[str, int] = {}
    for name, size in zip(model.cluster_names, model.sizes, strict=True):
        counts[name] = counts.get(name, 0) + size
    return {"shoppers_per_segment": counts, "parity": report}


def train_ranker(ds: BasketDataset, out: Path) -> dict[str, Any]:
    from models.nbr.export import train_and_export

    return dict(train_and_export(ds, out))


def train_all(ds: BasketDataset, out: Path, ranker: bool = True) -> dict[str, Any]:
    """Train, check parity, write ONNX + sidecars + ``train_summary.json``; return it."""
    out.mkdir(parents=True, exist_ok=True)
    metrics: dict[str, Any] = {
        "timing": train_timing(ds, out),
        "segments": train_segments(ds, out),
    }
    if ranker:
        metrics["nbr"] = train_ranker(ds, out)
    ts = ds.ts[~np.isnan(ds.ts)]
    training_data = {
        **ds.summary(),
        "first_ts": _iso(float(ts.min())) if len(ts) else None,
        "last_ts": _iso(float(ts.max())) if len(ts) else None,
    }
    summary = {"training_data": training_data, "metrics": metrics}
    _write(out / TRAIN_SUMMARY_FILE, summary)
    logger.info("trained models written to %s", out)
    return summary


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
