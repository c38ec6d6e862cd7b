"""One retraining pass: the champion verified, the scopes fanned out on Dask, bundles built
and signed for what passed the gate, uploaded, and a report of every decision.

The chain's candidate decides the run: refused, nothing is released (exit code
`EXIT_REFUSED`); passed, its bundle goes to `OUT/<version>/bundle.tar.gz` (and
`candidates/<version>/bundle.tar.gz` in the upload bucket), and every store whose own
candidate passed too gets `.../stores/<store>/bundle.tar.gz` beside it.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cloud_sync.retrain.config import CHAIN_SCOPE, HoldoutConfig, LakeLocation
from cloud_sync.retrain.tasks import FAILED, Champion, ScopeResult, retrain_scope
from models.bundle import build_bundle, load_private_key, verify_bundle
from models.bundle.version import TIME_VERSION_FORMAT, time_version

logger = logging.getLogger(__name__)

EXIT_PASSED = 0
EXIT_REFUSED = 3  # 2 is the command line's "error" (bad arguments, unreachable lake)
CANDIDATES_PREFIX = "candidates/"
BUNDLE_FILE = "bundle.tar.gz"


@dataclass(frozen=True)
class RetrainRequest:
    location: LakeLocation
    key: Path
    out: Path
    holdout: HoldoutConfig | None = None  # None: end after the newest partition, defaults
    holdout_weeks: int | None = None
    champion: str | None = None  # a bundle path (directory or .tar.gz) or s3://bucket/key
    public_key: Path | None = None  # verifies the champion; default: --key's public half
    stores: tuple[str, ...] | None = None
    workers: int = 2
    scheduler: str | None = None
    catalog: str | None = None  # CSV (product_id, category), path or s3://
    upload_bucket: str | None = None
    overrides: dict[str, int] = field(default_factory=dict)  # HoldoutConfig thresholds


@dataclass
class RetrainOutcome:
    exit_code: int
    reason: str
    version: str
    report: dict[str, Any]
    bundles: dict[str, Path]
    results: dict[str, ScopeResult]


@contextmanager
def dask_client(workers: int, scheduler: str | None) -> Iterator[Any]:
    """A client of the production cluster at `scheduler`, or of a LocalCluster of `workers`
    single-threaded worker processes (a tree fit per core; OpenMP threads are one each)."""
    from dask.distributed import Client, LocalCluster

    if scheduler:
        with Client(scheduler) as client:
            yield client
        return
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        client.wait_for_workers(workers)  # every worker gets a share from the first task on
        yield client


def retrain(request: RetrainRequest) -> RetrainOutcome:
    start = time.perf_counter()
    lake = request.location.lake()
    partitions = [p for p in lake.partitions()
                  if request.stores is None or p.store_id in request.stores]
    if not partitions:
        raise ValueError(f"no lake partitions in s3://{request.location.bucket}/events/"
                         + (f" for stores {', '.join(request.stores)}" if request.stores else ""))
    stores = tuple(sorted({p.store_id for p in partitions}))
    holdout = request.holdout or HoldoutConfig(
        end=HoldoutConfig.midnight_after(max(p.day for p in partitions)))
    if request.holdout_weeks is not None:
        holdout = replace(holdout, weeks=request.holdout_weeks)
    holdout = replace(holdout, **request.overrides)
    signing_key = load_private_key(request.key)  # fail before hours of training
    champion = load_champion(request, signing_key)
    categories = load_catalog(request.catalog, request.location) if request.catalog else None
    run_id = time_version()
    with dask_client(request.workers, request.scheduler) as client:
        workers = len(client.scheduler_info()["workers"])
        shared = client.scatter(champion, broadcast=True) if champion else None
        futures = {scope: client.submit(
            retrain_scope, scope, request.location, holdout, shared,
            stores if scope == CHAIN_SCOPE else None, categories,
            key=f"retrain-{scope}-{run_id}", pure=False)
            for scope in (CHAIN_SCOPE, *stores)}
        results: dict[str, ScopeResult] = dict(zip(futures, client.gather(list(futures.values())),
                                                   strict=True))
    version = next_version(champion.version if champion else None)
    chain = results[CHAIN_SCOPE]
    if chain.status == FAILED:
        raise RuntimeError(f"the chain's retraining failed: {chain.why}")
    bundles: dict[str, Path] = {}
    uploaded: dict[str, str] = {}
    if chain.passed:
        passed = [s for s, r in results.items() if r.passed]
        for scope in passed:
            bundles[scope] = _build(results[scope], request, signing_key, version)
        if request.upload_bucket:
            uploaded = _upload(bundles, request, version)
        exit_code, reason = EXIT_PASSED, f"candidate {version} passed: {chain.why}"
    else:
        exit_code, reason = EXIT_REFUSED, f"candidate refused: {chain.why}"
    report = _report(request, holdout, champion, stores, results, workers)
    report.update({
        "version": version if exit_code == EXIT_PASSED else None,
        "verdict": chain.gate["verdict"] if chain.gate else None, "reason": reason,
        "exit_code": exit_code,
        "bundles": {scope: str(path) for scope, path in bundles.items()},
        "uploaded": uploaded, "seconds": round(time.perf_counter() - start, 2),
    })
    return RetrainOutcome(exit_code, reason, version, report, bundles, results)


def _report(request: RetrainRequest, holdout: HoldoutConfig, champion: Champion | None,
            stores: tuple[str, ...], results: dict[str, ScopeResult], workers: int
            ) -> dict[str, Any]:
    """What was asked and what each scope did (the run's outcome is added by the caller)."""
    return {
        "champion": champion.version if champion else None,
        "cutoff": holdout.cutoff.isoformat(), "end": holdout.end.isoformat(),
        "holdout_weeks": holdout.weeks, "stores": list(stores),
        "thresholds": {"min_store_shoppers": holdout.min_store_shoppers,
                       "min_heldout_shoppers": holdout.min_heldout_shoppers,
                       "max_eval_shoppers": holdout.max_eval_shoppers},
        "dask": {"scheduler": request.scheduler or "LocalCluster", "workers": workers},
        "scopes": {scope: {"status": r.status, "why": r.why, "seconds": round(r.seconds, 2),
                           "worker_pid": r.worker_pid, "data": r.data, "gate": r.gate}
                   for scope, r in results.items()},
    }


def next_version(champion_version: str | None, now: datetime | None = None) -> str:
    """UTC time as YYYY.MM.DD.HHMMSS, and always after the champion's (a clock behind the
    last release's must not make an older-looking version)."""
    moment = (now or datetime.now(UTC)).replace(microsecond=0)
    if champion_version:
        try:
            previous = datetime.strptime(champion_version, TIME_VERSION_FORMAT).replace(
                tzinfo=UTC)
        except ValueError:
            previous = None
        if previous is not None and moment <= previous:
            moment = previous + timedelta(seconds=1)
    return time_version(moment)


def load_champion(request: RetrainRequest, signing_key: Any) -> Champion | None:
    """The released bundle's files, verified against the fleet's public key."""
    if not request.champion:
        return None
    public_key = request.public_key or signing_key.public_key()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(request.champion)
        if request.champion.startswith("s3://"):
            bucket, _, key = request.champion.removeprefix("s3://").partition("/")
            path = Path(tmp) / (Path(key).name or BUNDLE_FILE)
            request.location.s3().download_file(bucket, key, str(path))
        bundle = verify_bundle(path, public_key)
    trained = bundle.manifest.get("training_data", {}) or {}
    return Champion(version=bundle.version, files=dict(bundle.files),
                    trained_until=trained.get("last_ts"))


def load_catalog(source: str, location: LakeLocation) -> dict[str, str]:
    """Product id -> category from the chain's catalog CSV (master data's columns)."""
    if source.startswith("s3://"):
        bucket, _, key = source.removeprefix("s3://").partition("/")
        text = location.s3().get_object(Bucket=bucket, Key=key)["Body"].read().decode()
    else:
        text = Path(source).read_text()
    rows = csv.DictReader(io.StringIO(text))
    if not rows.fieldnames or not {"product_id", "category"} <= set(rows.fieldnames):
        raise ValueError(f"catalog {source} needs the columns product_id and category")
    return {row["product_id"]: row["category"] for row in rows if row["category"]}


def _build(result: ScopeResult, request: RetrainRequest, signing_key: Any,
           version: str) -> Path:
    assert result.files is not None
    target = request.out / version
    if result.scope != CHAIN_SCOPE:
        target = target / "stores" / result.scope
    with tempfile.TemporaryDirectory() as tmp:
        for name, data in result.files.items():
            (Path(tmp) / name).write_bytes(data)
        return build_bundle(Path(tmp), target / BUNDLE_FILE, signing_key, version=version)


def _upload(bundles: dict[str, Path], request: RetrainRequest, version: str) -> dict[str, str]:
    s3 = request.location.s3()
    uploaded = {}
    for scope, path in bundles.items():
        relative = path.relative_to(request.out / version).as_posix()
        key = f"{CANDIDATES_PREFIX}{version}/{relative}"
        s3.upload_file(str(path), request.upload_bucket, key)
        uploaded[scope] = f"s3://{request.upload_bucket}/{key}"
    return uploaded


def write_report(report: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, allow_nan=False) + "\n")
