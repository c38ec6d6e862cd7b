"""The demo's cloud: the local stand-ins (TLS Mosquitto for IoT Core, moto for S3 and IoT),
each store provisioned as a thing with its own certificate, one lake worker in this process,
counting what it writes."""

from __future__ import annotations

import contextlib
import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cloud_sync.fleet.provision import OwnCACertificates, provision_store
from cloud_sync.lake.store import EVENTS_PREFIX, Lake
from cloud_sync.lake.worker import LakeWorker
from cloud_sync.link.batch import Batch
from cloud_sync.local.broker import CLOUD_IDENTITY
from cloud_sync.local.stack import LAKE_BUCKET, LocalCloud

LAKE_CLIENT_ID = "demo-lake"


class CountingLake(Lake):
    """The lake as the demo's one worker writes it, counting each store's events as their
    batch is written: progress at no cost, where reading S3 back (moto answers in tens of
    milliseconds an object, and the stores send a few small batches a second) would not
    keep up. A batch delivered twice counts twice; `cloud-sync lake count` is exact."""

    def __init__(self, s3: Any, bucket: str) -> None:
        super().__init__(s3, bucket)
        self._written: Counter[str] = Counter()
        self._lock = threading.Lock()  # the worker's thread writes, the demo's reads

    def write_batch(self, batch: Batch) -> list[str]:
        keys = super().write_batch(batch)
        with self._lock:
            self._written[batch.store_id] += len(batch.events)
        return keys

    def counts(self) -> Counter[str]:
        with self._lock:
            return Counter(self._written)


@dataclass
class DemoCloud:
    cloud: LocalCloud
    worker: LakeWorker
    credentials: dict[str, Path]
    lake: CountingLake

    def lines(self) -> list[str]:
        info = self.cloud.info
        return [
            f"  IoT Core    : mqtts://{info.broker_host}:{info.broker_port}  [Mosquitto with"
            f" mutual TLS, CA {info.ca_path}]",
            f"  AWS APIs    : {info.moto_endpoint}  [moto: S3 bucket {LAKE_BUCKET}, IoT things,"
            f" region {info.region}]",
            f"  lake worker : {LAKE_CLIENT_ID}, in this process, writing"
            f" s3://{LAKE_BUCKET}/{EVENTS_PREFIX}dt=DAY/store=ID/",
            f"  lake count  : cloud-sync lake count --local {info.directory}",
            "  analysis    : after the release, every consenting shopper analysed without"
            " Bedrock (the fallback, 'not configured', from the release's models), sent to"
            " the stores' staff pages",
        ]


def start_cloud(directory: Path, fleet_dir: Path, store_ids: Sequence[str],
                cleanup: contextlib.ExitStack) -> DemoCloud:
    """Bring the local cloud up in `directory`, provision the stores (credentials in
    `fleet_dir/<store>/`) and start the lake worker; `cleanup` undoes it in reverse."""
    cloud = LocalCloud(directory)
    cloud.up()
    cleanup.callback(cloud.down)
    iot = cloud.boto3_client("iot")
    issuer = OwnCACertificates(cloud.ca)
    credentials = {}
    for store in store_ids:
        # moto keeps IoT in memory: every run registers the CA and issues certificates anew.
        provision_store(iot, store, fleet_dir, endpoint_host=cloud.broker.host,
                        endpoint_port=cloud.broker.port, issuer=issuer)
        credentials[store] = (fleet_dir / store).resolve()
    # The local broker grants the cloud's own identity the shared lake subscription.
    worker_credentials = cloud.credentials(CLOUD_IDENTITY,
                                           cloud.directory / "lake-workers" / LAKE_CLIENT_ID)
    lake = CountingLake(cloud.boto3_client("s3"), LAKE_BUCKET)
    worker = LakeWorker(worker_credentials, lake, LAKE_CLIENT_ID)
    # Registered first: start() runs the worker's thread before connecting, so a failed
    # connect still leaves a thread to stop.
    cleanup.callback(worker.stop)
    worker.start()
    return DemoCloud(cloud, worker, credentials, lake)
