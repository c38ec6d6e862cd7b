"""A store takes model releases through AWS IoT Jobs (the local stand-in, driven by boto3 on
moto's side and by the store's real awsiotsdk jobs client): download, verify, swap,
probation on its own health, and the outcome in the execution's status details."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cloud_sync.link.masterdata import RESULTS_SUFFIX
from cloud_sync.local.broker import CLOUD_IDENTITY
from cloud_sync.local.stack import LocalCloud
from cloud_sync.release.document import INSTALL, ROLLBACK, JobDocument, presigned_placeholder
from cloud_sync.topics import telemetry_prefix
from models.bundle.manifest import sha256_hex
from tests.cloud.conftest import Inbox
from tests.cloud.stores import RunningAgent, provision, served_version, shopper_traffic
from tests.ingestion.conftest import wait_until
from tests.model_bundles import Bundles

BUCKET = "instore-releases-test"
ADMIN_KEY = "admin-key-0123456789"
KIOSK_KEY = "kiosk-key-0123456789"
TERMINAL = {"SUCCEEDED", "FAILED", "REJECTED", "TIMED_OUT", "CANCELED"}


@pytest.fixture
def store(local_cloud: LocalCloud, agent_factory: Any, bundles: Bundles, tmp_path: Path
          ) -> Iterator[RunningAgent]:
    s3 = local_cloud.boto3_client("s3")
    if BUCKET not in {b["Name"] for b in s3.list_buckets()["Buckets"]}:
        s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={
            "LocationConstraint": local_cloud.region})
    name = f"upd-{uuid.uuid4().hex[:8]}"
    agent = agent_factory(name, provision(local_cloud, name, tmp_path / "creds"))
    agent.settings.update(
        model_public_key=str(bundles.public_key), model_bundle=str(bundles.v1),
        model_update_poll_s="1", api_keys=json.dumps([
            {"name": "admin", "role": "admin", "key": ADMIN_KEY},
            {"name": "kiosk", "role": "kiosk", "key": KIOSK_KEY}]))
    agent.start()
    wait_until(lambda: served(agent) == "test-1", timeout=60, what="test-1 served")
    yield agent


def served(agent: RunningAgent) -> str | None:
    return served_version(agent, ADMIN_KEY)


def release(cloud: LocalCloud, store: str, archive: Path, version: str, *,
            operation: str = INSTALL, probation_s: int = 1, max_p99_ms: float = 5000.0,
            body: bytes | None = None) -> str:
    """Upload `archive` (or `body` in its place) and create a job for `store` naming it."""
    data = archive.read_bytes()
    key = f"releases/{uuid.uuid4().hex}/bundle.tar.gz"
    cloud.boto3_client("s3").put_object(Bucket=BUCKET, Key=key, Body=body or data)
    document = JobDocument(operation=operation, release=version, version=version,
                           url=presigned_placeholder(BUCKET, key), sha256=sha256_hex(data),
                           bytes=len(data), probation_s=probation_s, max_error_rate=0.05,
                           max_p99_ms=max_p99_ms)
    iot = cloud.boto3_client("iot")
    thing_arn = iot.describe_thing(thingName=store)["thingArn"]
    job_id = f"rel-{uuid.uuid4().hex[:12]}"
    iot.create_job(jobId=job_id, targets=[thing_arn], document=document.to_json(),
                   presignedUrlConfig={"roleArn": "arn:aws:iam::123456789012:role/releases",
                                       "expiresInSec": 3600})
    return job_id


def outcome(cloud: LocalCloud, job_id: str, store: str, timeout: float = 90
            ) -> tuple[str, dict[str, str]]:
    iot = cloud.boto3_client("iot")

    def execution() -> dict[str, Any]:
        return iot.describe_job_execution(jobId=job_id, thingName=store)["execution"]

    wait_until(lambda: execution()["status"] in TERMINAL, timeout=timeout,
               what=f"job {job_id} finished")
    done = execution()
    return done["status"], done.get("statusDetails", {}).get("detailsMap", {})


def test_a_release_is_downloaded_verified_served_and_reported(
        local_cloud: LocalCloud, store: RunningAgent, bundles: Bundles, tmp_path: Path,
        connect: Any) -> None:
    # What the store publishes besides its events: the Jobs answers it receives on the same
    # connection must not be taken for master data (and answered with errors).
    published = Inbox()
    cloud = connect(local_cloud.credentials(CLOUD_IDENTITY, tmp_path / "cloud"),
                    client_id=f"watch-{store.store}", on_publish=published)
    cloud.subscribe([f"{telemetry_prefix(store.store)}{RESULTS_SUFFIX}"])
    archive = bundles.build(tmp_path / "v2.tar.gz", "test-2")
    job = release(local_cloud, store.store, archive, "test-2")
    status, details = outcome(local_cloud, job, store.store)
    assert status == "SUCCEEDED", details
    assert details["stage"] == "serving" and details["version"] == "test-2"
    assert {"requests", "error_rate", "p99_ms"} <= set(details)
    assert served(store) == "test-2"
    assert published.payloads == []


@pytest.mark.parametrize("problem", ["tampered", "older", "unsigned", "same-version"])
def test_a_bad_release_is_refused_and_the_served_model_stays(
        local_cloud: LocalCloud, store: RunningAgent, bundles: Bundles, tmp_path: Path,
        problem: str) -> None:
    if problem == "tampered":  # the object in S3 is not the archive the job names
        archive = bundles.build(tmp_path / "v2.tar.gz", "test-2")
        job = release(local_cloud, store.store, archive, "test-2",
                      body=archive.read_bytes()[:-10] + bytes(10))
    elif problem == "same-version":  # another bundle signed as the version served
        archive = bundles.build(tmp_path / "v1-again.tar.gz", "test-1")
        job = release(local_cloud, store.store, archive, "test-1")
    elif problem == "older":
        archive = bundles.build(tmp_path / "v0.tar.gz", "test-0")
        job = release(local_cloud, store.store, archive, "test-0")
    else:
        from models.bundle import generate_keypair

        other, _ = generate_keypair(tmp_path / "other-keys")
        archive = bundles.build(tmp_path / "evil.tar.gz", "test-9", key=other)
        job = release(local_cloud, store.store, archive, "test-9")
    status, details = outcome(local_cloud, job, store.store)
    assert status == "FAILED"
    assert details["stage"] == "refused" and details["reason"]
    assert str(store.db.parent) not in details["reason"]  # nothing of the store's disk
    assert served(store) == "test-1"


def test_a_release_that_hurts_the_store_is_rolled_back_on_probation_and_stays_so(
        local_cloud: LocalCloud, store: RunningAgent, bundles: Bundles, tmp_path: Path) -> None:
    """Served, then the store's own p99 breaks the release's bound under real traffic: the
    store goes back to test-1 at once, reports FAILED with the numbers, and a restart keeps
    test-1."""
    archive = bundles.build(tmp_path / "v2.tar.gz", "test-2")
    job = release(local_cloud, store.store, archive, "test-2", probation_s=60,
                  max_p99_ms=0.5)  # no request is that fast: any traffic breaches it
    started = time.monotonic()
    with shopper_traffic(store, KIOSK_KEY):
        status, details = outcome(local_cloud, job, store.store)
    assert time.monotonic() - started < 45, "the breach should end probation at once"
    assert status == "FAILED" and details["stage"] == "rolled-back", details
    assert "p99 latency" in details["reason"] and int(details["requests"]) >= 20
    assert served(store) == "test-1"
    store.stop()
    store.start()
    wait_until(lambda: served(store) is not None, timeout=60, what="serving after restart")
    assert served(store) == "test-1"


def test_a_rollback_job_goes_back_to_the_named_version(
        local_cloud: LocalCloud, store: RunningAgent, bundles: Bundles, tmp_path: Path) -> None:
    v2 = bundles.build(tmp_path / "v2.tar.gz", "test-2")
    assert outcome(local_cloud, release(local_cloud, store.store, v2, "test-2"),
                   store.store)[0] == "SUCCEEDED"
    v1 = bundles.build(tmp_path / "v1.tar.gz", "test-1")
    job = release(local_cloud, store.store, v1, "test-1", operation=ROLLBACK)
    status, details = outcome(local_cloud, job, store.store)
    assert status == "SUCCEEDED" and details["version"] == "test-1"
    assert served(store) == "test-1"
