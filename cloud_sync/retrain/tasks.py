"""The Dask task of a retraining run: one scope (a store, or the whole chain) read from the
lake, split in time, trained, scored against the champion and judged.

`retrain_scope` is a pure function of its arguments: the worker opens its own S3 client
from the `LakeLocation` and reads the partitions itself, so nothing large travels from the
scheduler. It returns a small `ScopeResult`: counts, the gate's document, and the trained
files (a few MB of ONNX and JSON) only when the candidate passed.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from cloud_sync.retrain.config import CHAIN_SCOPE, MIN_BASKETS, HoldoutConfig, LakeLocation
from cloud_sync.retrain.evaluate import ModelFiles, score
from cloud_sync.retrain.gate import judge
from cloud_sync.retrain.holdout import held_out_shoppers, history_shoppers, split_history
from models.bundle.build import BUNDLED_SUFFIXES, TRAIN_SUMMARY_FILE
from models.datasets.base import BasketDataset
from models.datasets.lake import load_lake
from models.timing.evaluate import TimingSplit

logger = logging.getLogger(__name__)

TRAINED, SKIPPED, FAILED = "trained", "skipped", "failed"
# Days the timing model's split needs besides its horizon, test and validation windows
# (the edge's store training asks the same: see edge_agent/store_training.py).
TIMING_MIN_TRAIN_DAYS = 90
# Stores the chain's task reads at once: S3 answers each GET in tens of ms, so the task waits
# on the network, not the CPU; 8 keeps a worker's connection pool (10) from queueing.
CHAIN_READ_THREADS = 8


@dataclass(frozen=True)
class Champion:
    """The released bundle's model files, verified by the driver before the fan-out."""

    version: str
    files: ModelFiles = field(repr=False)
    trained_until: str | None = None  # its training data's last timestamp (manifest)


@dataclass(frozen=True)
class ScopeResult:
    scope: str
    status: str  # trained (then `gate` says pass or refuse), skipped, failed
    why: str
    worker_pid: int
    seconds: float
    data: dict[str, Any]
    gate: dict[str, Any] | None = None
    files: ModelFiles | None = field(default=None, repr=False)  # only when the gate passed

    @property
    def passed(self) -> bool:
        return self.gate is not None and self.gate["verdict"] == "pass"


def retrain_scope(scope: str, location: LakeLocation, holdout: HoldoutConfig,
                  champion: Champion | None, stores: tuple[str, ...] | None = None,
                  categories: Mapping[str, str] | None = None) -> ScopeResult:
    """Retrain one scope: a store id, or `CHAIN_SCOPE` over `stores` (None: every store)."""
    start = time.perf_counter()

    def result(status: str, why: str, data: dict[str, Any], **kw: Any) -> ScopeResult:
        return ScopeResult(scope, status, why, os.getpid(), time.perf_counter() - start,
                           data, **kw)

    phases: dict[str, float] = {}  # seconds spent reading, training, scoring
    try:
        ds = _read(scope, location, holdout, stores, categories)
        phases["read"] = time.perf_counter() - start
        cutoff = holdout.cutoff.timestamp()
        shoppers = held_out_shoppers(ds, cutoff, holdout.holdout_days,
                                     holdout.max_eval_shoppers, holdout.seed)
        data = {"baskets": int(ds.baskets_per_user().sum()), "lines": ds.n_rows,
                "shoppers": ds.n_users, "cutoff": holdout.cutoff.isoformat(),
                "history_shoppers": history_shoppers(ds, cutoff, MIN_BASKETS),
                "heldout_shoppers": len(shoppers), "phases_s": phases}
        if scope != CHAIN_SCOPE and (
                data["history_shoppers"] < holdout.min_store_shoppers
                or len(shoppers) < holdout.min_heldout_shoppers):
            return result(SKIPPED, f"{data['history_shoppers']} shoppers with >= {MIN_BASKETS}"
                          f" baskets (need {holdout.min_store_shoppers}) and {len(shoppers)}"
                          f" held-out (need {holdout.min_heldout_shoppers}): the chain model"
                          " serves it", data)
        mark = time.perf_counter()
        with tempfile.TemporaryDirectory() as tmp:
            summary = train_models(split_history(ds, cutoff), Path(tmp))
            files = _files(Path(tmp))
        phases["train"] = time.perf_counter() - mark
        mark = time.perf_counter()
        candidate = score(files, shoppers, cutoff, holdout.holdout_days)
        theirs = (score(champion.files, shoppers, cutoff, holdout.holdout_days)
                  if champion else None)
        phases["score"] = time.perf_counter() - mark
        verdict = judge(candidate, theirs, champion_version=champion and champion.version,
                        heldout_shoppers=len(shoppers),
                        min_heldout_shoppers=holdout.min_heldout_shoppers, seed=holdout.seed)
        gate = {**verdict.document, "scope": scope, "holdout_weeks": holdout.weeks,
                "cutoff": holdout.cutoff.isoformat()}
        if champion and champion.trained_until and (
                champion.trained_until[:19] >= gate["cutoff"][:19]):
            # The champion may have learnt from held-out weeks: the gate is then stricter.
            gate["champion_saw_holdout"] = True
        summary["metrics"]["gate"] = gate
        files[TRAIN_SUMMARY_FILE] = json.dumps(summary, indent=2, allow_nan=False).encode()
        return result(TRAINED, verdict.reason, data, gate=gate,
                      files=files if verdict.passed else None)
    except Exception as exc:  # one scope's failure is reported, never the whole run's end
        logger.exception("retraining %s failed", scope)
        return result(FAILED, f"{type(exc).__name__}: {exc}", {})


def _read(scope: str, location: LakeLocation, holdout: HoldoutConfig,
          stores: tuple[str, ...] | None, categories: Mapping[str, str] | None
          ) -> BasketDataset:
    lake = location.lake()
    last_day = (holdout.end - timedelta(days=1)).date()  # the end is an exclusive midnight
    if scope != CHAIN_SCOPE:
        return load_lake(lake.read(store_id=scope, until=last_day), store_id=scope,
                         categories=categories)
    if stores is None:
        return load_lake(lake.read(until=last_day), categories=categories)
    # The stores' reads are independent S3 requests: a few threads overlap their waits
    # (I/O inside one task, not a second scheduler; boto3 clients are thread-safe).
    with ThreadPoolExecutor(max_workers=CHAIN_READ_THREADS) as pool:
        tables = list(pool.map(lambda store: lake.read(store_id=store, until=last_day),
                               stores))
    return load_lake(pa.concat_tables(tables), categories=categories)


def timing_min_history_days() -> float:
    split = TimingSplit()
    return split.horizon_days + split.test_days + split.val_days + TIMING_MIN_TRAIN_DAYS


def train_models(history: BasketDataset, out: Path) -> dict[str, Any]:
    """`models.training.train_all` when the history can train every model; without timing
    (no categories, or too short for its split) the ranker and segments alone, timing
    marked skipped with the reason (the champion's timing model then refuses the gate)."""
    from models.training import TRAIN_SUMMARY_FILE as SUMMARY
    from models.training import train_all, train_ranker, train_segments

    ts = history.ts[np.isfinite(history.ts)]
    days = float(ts.max() - ts.min()) / 86_400 if len(ts) else 0.0
    if history.category is not None and days >= timing_min_history_days():
        return train_all(history, out)
    why = ("no product categories (give the catalog)" if history.category is None else
           f"{days:.0f} days of history; the timing model needs {timing_min_history_days():.0f}")
    out.mkdir(parents=True, exist_ok=True)
    span = {"first_ts": _iso(ts.min()), "last_ts": _iso(ts.max())} if len(ts) else {}
    summary = {"training_data": {**history.summary(), **span},
               "metrics": {"timing": {"skipped": why},
                           "segments": train_segments(history, out),
                           "nbr": train_ranker(history, out)}}
    (out / SUMMARY).write_text(json.dumps(summary, indent=2, allow_nan=False) + "\n")
    return summary


def _files(directory: Path) -> ModelFiles:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())
            if p.is_file() and p.suffix in BUNDLED_SUFFIXES}


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(float(ts), UTC).isoformat(timespec="seconds").replace(
        "+00:00", "Z")
