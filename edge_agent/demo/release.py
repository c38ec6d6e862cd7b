"""The demo's cloud team ships a model: once every store has trained on its own history,
the chain releases a new bundle to the fleet through AWS IoT Jobs (the local stand-in), the
first store as the canary, then the rest; each store downloads, verifies, swaps and watches
its own health on probation, and the controller's decisions are printed as they are made.

Beside the rollout, the chain analyses its consenting shoppers with the release's models,
without Bedrock, and sends each store its own (`analysis.py`).

Every store of the demo trusts one fleet key (the chain's), so the release verifies at
every store; the bundle is the first store's models, signed anew as a newer version.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path

from cloud_sync.release.commands import LOCAL_RELEASES_BUCKET, LOCAL_ROLE_ARN
from cloud_sync.release.controller import ReleaseController
from cloud_sync.release.create import create_release
from cloud_sync.release.spec import RolloutSpec
from edge_agent.demo.analysis import ANALYSIS_DIR, analyze_and_push
from edge_agent.demo.cloud import DemoCloud
from edge_agent.demo.store import DEMO_MODELS, DemoStore
from edge_agent.store_training import TRAINED_MARKER
from models.bundle import build_bundle, load_private_key
from models.bundle.keys import PRIVATE_KEY_FILE
from models.bundle.version import time_version

logger = logging.getLogger(__name__)

RELEASES_DIR = "releases"
# A short probation and no soak: the demo shows the whole rollout in a minute or so. A real
# release soaks for half an hour (docs/releases.md).
DEMO_PROBATION_S = 20
DEMO_MAX_P99_MS = 1000.0
WATCH_INTERVAL_S = 2.0


def release_when_trained(cloud: DemoCloud, stores: list[DemoStore], root: Path,
                         stop: threading.Event) -> threading.Thread:
    """In the background: wait for every store's training, then release to the fleet."""
    thread = threading.Thread(target=_release, args=(cloud, stores, root, stop), daemon=True,
                              name="demo-release")
    thread.start()
    return thread


def _release(cloud: DemoCloud, stores: list[DemoStore], root: Path,
             stop: threading.Event) -> None:
    while not stores[-1].trained.wait(1.0):
        if stop.is_set():
            return
    first = stores[0]
    models = first.settings.db.parent / DEMO_MODELS
    key = first.settings.model_public_key
    if stop.is_set():
        return
    if key is None or not (models / TRAINED_MARKER).exists():
        logger.info("no trained models to release")
        _analyze(cloud, stores, root, None, None)  # the analysis still runs, on the rules
        return
    # ".1": newer than a store's own training signed in the same second.
    version = f"{time_version()}.1"
    try:
        bundle = build_bundle(models, root / RELEASES_DIR / f"{version}.tar.gz",
                              load_private_key(key.parent / PRIVATE_KEY_FILE), version=version)
        s3, iot = cloud.cloud.boto3_client("s3"), cloud.cloud.boto3_client("iot")
        if LOCAL_RELEASES_BUCKET not in {b["Name"] for b in s3.list_buckets()["Buckets"]}:
            s3.create_bucket(Bucket=LOCAL_RELEASES_BUCKET, CreateBucketConfiguration={
                "LocationConstraint": cloud.cloud.region})
        spec = RolloutSpec(canaries=(first.settings.store_id,), waves=(100,), soak_s=0,
                           probation_s=DEMO_PROBATION_S, max_p99_ms=DEMO_MAX_P99_MS)
        record = create_release(iot=iot, s3=s3, bucket=LOCAL_RELEASES_BUCKET,
                                role_arn=LOCAL_ROLE_ARN, bundle=bundle, public_key=key,
                                spec=spec)
        print(f"release {record.version}: to {len(stores)} stores in waves, canary"
              f" {first.settings.store_id}  (cloud-sync release status --local"
              f" {cloud.cloud.directory})", flush=True)
        # The chain's analysis of its shoppers, from this release's models, beside the rollout.
        threading.Thread(target=_analyze, args=(cloud, stores, root, bundle, key), daemon=True,
                         name="demo-analysis").start()
        controller = ReleaseController(iot, s3, LOCAL_RELEASES_BUCKET, LOCAL_ROLE_ARN)
        controller.watch(record.version, interval_s=WATCH_INTERVAL_S,
                         on_decision=lambda d: print(f"release {record.version}: {d.action}"
                                                     f" — {d.reason}", flush=True),
                         sleep=_until(stop))
    except _Stopped:
        return
    except Exception as exc:  # the demo goes on without the release; say why in one line
        logger.warning("the demo's release did not go out: %s: %s", type(exc).__name__, exc)
        logger.debug("the demo's release failed", exc_info=True)


def _analyze(cloud: DemoCloud, stores: list[DemoStore], root: Path, bundle: Path | None,
             public_key: Path | None) -> None:
    """Every consenting shopper analysed without Bedrock, each store sent its own; one line."""
    try:
        done = analyze_and_push(
            cloud.cloud, cloud.lake,
            {p.product_id: p.category for p in stores[0].simulation.catalog},
            root / ANALYSIS_DIR, bundle=bundle, public_key=public_key,
            store_shoppers={s.settings.store_id: (cloud.credentials[s.settings.store_id],
                                                  s.simulation.shoppers) for s in stores})
        print(done.line(), flush=True)
    except Exception as exc:  # the demo goes on without it; say why in one line
        logger.warning("the demo's analysis did not run: %s: %s", type(exc).__name__, exc)
        logger.debug("the demo's analysis failed", exc_info=True)


class _Stopped(Exception):
    """The demo is stopping: the controller's watch ends here."""


def _until(stop: threading.Event) -> Callable[[float], None]:
    def pause(seconds: float) -> None:
        if stop.wait(seconds):
            raise _Stopped

    return pause
