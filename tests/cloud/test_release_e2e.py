"""The whole loop with a real store: `release create` sends a wave's job, the store's agent
(its updater on the Jobs MQTT API) downloads, verifies, serves and reports its health, the
controller reads that as a healthy wave, and a rollback takes the store back."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from cloud_sync.local.stack import LocalCloud
from cloud_sync.release import jobs
from cloud_sync.release.commands import LOCAL_ROLE_ARN
from cloud_sync.release.controller import ReleaseController
from cloud_sync.release.create import create_release
from cloud_sync.release.decide import PROMOTE, decide
from cloud_sync.release.record import COMPLETE
from cloud_sync.release.spec import RolloutSpec
from tests.cloud.stores import RunningAgent, provision
from tests.model_bundles import Bundles

pytest.importorskip("edge_agent.updates.updater", reason="the store's updater is not here yet")

ADMIN_KEY = "admin-key-release-e2e"
TERMINAL = {"SUCCEEDED", "FAILED", "REJECTED", "TIMED_OUT", "CANCELED"}
WAIT_S = 90.0


def served(agent: RunningAgent) -> str | None:
    response = httpx.get(f"http://127.0.0.1:{agent.port}/v1/admin/models",
                         headers={"X-API-Key": ADMIN_KEY}, timeout=10)
    active = response.json().get("active") if response.status_code == 200 else None
    return active["version"] if active else None


def finished(iot: Any, job: str, store: str) -> dict[str, Any]:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        execution = iot.describe_job_execution(jobId=job, thingName=store)["execution"]
        if execution["status"] in TERMINAL:
            return dict(execution)
        time.sleep(0.5)
    raise AssertionError(f"job {job} on {store} did not finish in {WAIT_S} s")


def test_a_store_takes_a_release_reports_health_and_is_rolled_back(
        local_cloud: LocalCloud, agent_factory: Any, bundles: Bundles, tmp_path: Path) -> None:
    s3, iot = local_cloud.boto3_client("s3"), local_cloud.boto3_client("iot")
    bucket = f"releases-e2e-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={
        "LocationConstraint": local_cloud.region})
    controller = ReleaseController(iot, s3, bucket, LOCAL_ROLE_ARN)
    store = f"rel-e2e-{uuid.uuid4().hex[:6]}"
    agent = agent_factory(store, provision(local_cloud, store, tmp_path / "creds"))
    agent.settings.update(model_public_key=str(bundles.public_key),
                          model_bundle=str(bundles.v1), model_update_poll_s="1",
                          api_keys=json.dumps([{"name": "admin", "role": "admin",
                                                "key": ADMIN_KEY}]))
    agent.start()
    deadline = time.monotonic() + WAIT_S
    while served(agent) != "test-1":
        assert time.monotonic() < deadline, "the store never served test-1"
        time.sleep(0.5)
    spec = RolloutSpec(canaries=(store,), probation_s=1, soak_s=0, max_p99_ms=5000.0,
                       max_error_rate=0.05)

    def release(version: str) -> Any:
        return create_release(iot=iot, s3=s3, bucket=bucket, role_arn=LOCAL_ROLE_ARN,
                              bundle=bundles.build(tmp_path / f"{version}.tar.gz", version),
                              public_key=bundles.public_key, spec=spec)

    # test-1, which the store already serves: it reports success at once.
    first = release("test-1")
    assert finished(iot, first.waves[0]["job_id"], store)["status"] == "SUCCEEDED"
    first.status = COMPLETE  # set-up: the rest of the fleet took test-1 too
    controller.store.save(first)

    second = release("test-2")
    wave_job = second.waves[0]["job_id"]
    done = finished(iot, wave_job, store)
    details = done["statusDetails"]["detailsMap"]
    assert done["status"] == "SUCCEEDED", details
    assert details["stage"] == "serving" and details["version"] == "test-2"
    assert served(agent) == "test-2"
    # The controller reads the store's own report as a healthy canary wave.
    decision = decide(spec, "test-2", [store], jobs.executions(iot, wave_job),
                      datetime.now(UTC), last_wave=False)
    assert decision.action == PROMOTE, decision

    record = controller.rollback("test-2", "end-to-end test")
    (rollback,) = record.rollbacks
    assert rollback["things"] == [store] and rollback["version"] == "test-1"
    back = finished(iot, rollback["job_id"], store)
    assert back["status"] == "SUCCEEDED", back["statusDetails"]
    assert served(agent) == "test-1"
