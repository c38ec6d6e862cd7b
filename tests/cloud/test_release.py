"""Releases against the local cloud: moto's S3 and IoT control plane through boto3, and the
local IoT Jobs device service driven through the Jobs MQTT API as a store would."""

from __future__ import annotations

import contextlib
import io
import itertools
import json
import math
import tarfile
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from awscrt import mqtt5
from sklearn.linear_model import LinearRegression

from cloud_sync.cli import main as cloud_sync
from cloud_sync.link.credentials import LinkCredentials
from cloud_sync.link.mqtt import LinkClient
from cloud_sync.local.stack import LocalCloud
from cloud_sync.release.commands import LOCAL_RELEASES_BUCKET, LOCAL_ROLE_ARN
from cloud_sync.release.controller import ReleaseController
from cloud_sync.release.create import create_release
from cloud_sync.release.document import JobDocument, presigned_placeholder
from cloud_sync.release.kms_signer import KmsSigner
from cloud_sync.release.record import COMPLETE, ReleaseError, ReleaseStore
from cloud_sync.release.spec import RolloutSpec
from models import onnx_export
from models.bundle import BundleError, SignatureError, build_bundle, generate_keypair
from models.bundle import load_private_key as load_key
from models.bundle.signing import encode_signature
from tests.cloud.conftest import unique_store
from tests.cloud.stores import provision
from tests.test_embedded_broker import wait_until

_buckets = itertools.count(1)
HEALTHY = {"stage": "serving", "requests": "500", "error_rate": "0.002", "p99_ms": "35.5"}


@pytest.fixture(scope="module")
def signing(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("release-signing")
    private, public = generate_keypair(root / "keys")
    models = root / "models"
    models.mkdir()
    x = np.arange(20, dtype=np.float32).reshape(10, 2)
    onnx_export.save(onnx_export.to_onnx_float32(LinearRegression().fit(x, x[:, 0]), 2),
                     models / "timing.onnx")
    return {"private": private, "public": public, "models": models, "root": root}


@pytest.fixture
def bundle(signing: dict[str, Path], tmp_path: Path) -> Callable[..., Path]:
    def make(version: str, key: Path | None = None) -> Path:
        return build_bundle(signing["models"], tmp_path / f"bundle-{version}.tar.gz",
                            load_key(key or signing["private"]), version=version)
    return make


@pytest.fixture
def controller(local_cloud: LocalCloud) -> Iterator[ReleaseController]:
    """A controller on a fresh releases bucket; every job it made is canceled at the end, so
    no other test's store is left with a pending job."""
    s3, iot = local_cloud.boto3_client("s3"), local_cloud.boto3_client("iot")
    bucket = f"releases-test-{next(_buckets)}"
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={
        "LocationConstraint": local_cloud.region})
    made = ReleaseController(iot, s3, bucket, LOCAL_ROLE_ARN)
    yield made
    for version in made.store.versions():
        record = made.store.load(version)
        for job in [w["job_id"] for w in record.waves] + [r["job_id"] for r in record.rollbacks]:
            if job:
                with contextlib.suppress(Exception):
                    iot.cancel_job(jobId=job, force=True)


@pytest.fixture
def stores(local_cloud: LocalCloud, tmp_path: Path) -> Callable[[int], list[str]]:
    def make(count: int) -> list[str]:
        names = [unique_store("rel") for _ in range(count)]
        for name in names:
            provision(local_cloud, name, tmp_path / "fleet")
        return names
    return make


def create(controller: ReleaseController, path: Path, public: Path, **spec: Any) -> Any:
    return create_release(iot=controller.iot, s3=controller.store.s3,
                          bucket=controller.store.bucket, role_arn=LOCAL_ROLE_ARN,
                          bundle=path, public_key=public, spec=RolloutSpec(**spec))


def test_create_uploads_records_and_starts_the_canary_job(
        controller: ReleaseController, bundle: Callable[..., Path],
        signing: dict[str, Path], stores: Callable[[int], list[str]]) -> None:
    canary, other = stores(2)
    path = bundle("2026.12.06")
    record = create(controller, path, signing["public"], canaries=(canary,), waves=(50, 100),
                    probation_s=300)
    s3, iot, bucket = controller.store.s3, controller.iot, controller.store.bucket
    key = "releases/2026.12.06/bundle.tar.gz"
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == path.read_bytes()
    stored = json.loads(s3.get_object(Bucket=bucket, Key="releases/2026.12.06/release.json")
                        ["Body"].read())
    assert stored["status"] == "rolling-out" and stored["previous"] is None
    assert stored["waves"][0]["things"] == [canary]
    assert other in [t for w in stored["waves"][1:] for t in w["things"]]
    assert canary not in [t for w in stored["waves"][1:] for t in w["things"]]
    assert [w["job_id"] is not None for w in stored["waves"]] == [True] + [False] * (
        len(stored["waves"]) - 1)
    assert [d["action"] for d in stored["decisions"]] == ["create", "start"]

    job = iot.describe_job(jobId=record.waves[0]["job_id"])["job"]
    arn = iot.describe_thing(thingName=canary)["thingArn"]
    assert job["targets"] == [arn] and job["targetSelection"] == "SNAPSHOT"
    rate = job["jobExecutionsRolloutConfig"]
    assert rate["exponentialRate"]["baseRatePerMinute"] == 10
    assert rate["exponentialRate"]["rateIncreaseCriteria"] == {"numberOfSucceededThings": 10}
    assert {(c["failureType"], c["action"]) for c in job["abortConfig"]["criteriaList"]} == {
        ("FAILED", "CANCEL"), ("REJECTED", "CANCEL"), ("TIMED_OUT", "CANCEL")}
    assert job["timeoutConfig"] == {"inProgressTimeoutInMinutes": math.ceil(300 / 60) + 30}
    assert job["presignedUrlConfig"] == {"roleArn": LOCAL_ROLE_ARN, "expiresInSec": 3600}
    document = JobDocument.from_json(iot.get_job_document(jobId=job["jobId"])["document"])
    assert document.operation == "install-bundle" and document.version == "2026.12.06"
    assert document.url == presigned_placeholder(bucket, key)
    assert (document.bytes, document.probation_s) == (path.stat().st_size, 300)
    assert document.sha256 == record.bundle["sha256"] == stored["bundle"]["sha256"]


def test_promote_refuses_while_executions_are_queued(
        controller: ReleaseController, bundle: Callable[..., Path],
        signing: dict[str, Path], stores: Callable[[int], list[str]]) -> None:
    canaries = stores(2)
    record = create(controller, bundle("3.0"), signing["public"], canaries=tuple(canaries),
                    soak_s=0)
    jobs_before = {j["jobId"] for j in controller.iot.list_jobs()["jobs"]}
    for _ in range(2):
        decision = controller.step()
        assert decision.action == "wait", decision
        assert "0 of 2 stores succeeded" in decision.reason
    assert {j["jobId"] for j in controller.iot.list_jobs()["jobs"]} == jobs_before
    after = controller.store.load(record.version)
    assert after.current == 0 and after.waves[1]["job_id"] is None
    assert [d["action"] for d in after.decisions] == ["create", "start", "wait"]  # once


def test_only_a_newer_version_is_released(
        controller: ReleaseController, bundle: Callable[..., Path],
        signing: dict[str, Path], stores: Callable[[int], list[str]]) -> None:
    (canary,) = stores(1)
    create(controller, bundle("1.9"), signing["public"], canaries=(canary,))
    with pytest.raises(ReleaseError, match="still rolling out"):
        create(controller, bundle("1.10"), signing["public"], canaries=(canary,))
    controller.abort("1.9", "superseded in the test")
    create(controller, bundle("1.10"), signing["public"], canaries=(canary,))  # 10 > 9
    controller.abort("1.10", "superseded in the test")
    for older in ("1.8", "1.10"):
        with pytest.raises(ReleaseError, match=r"not newer than the last release 1\.10"):
            create(controller, bundle(older), signing["public"], canaries=(canary,))
    assert controller.store.versions() == ["1.9", "1.10"]
    listed = controller.store.s3.list_objects_v2(Bucket=controller.store.bucket)["Contents"]
    assert not [o["Key"] for o in listed if o["Key"].startswith("releases/1.8/")]


def _retar(archive: Path, out: Path, change: Callable[[str, bytes], bytes]) -> Path:
    with tarfile.open(archive, "r:gz") as src, tarfile.open(out, "w:gz") as dst:
        for member in src.getmembers():
            data = change(member.name, src.extractfile(member).read())  # type: ignore[union-attr]
            member.size = len(data)
            dst.addfile(member, io.BytesIO(data))
    return out


@pytest.mark.parametrize("problem", ["changed-model", "changed-manifest", "other-key"])
def test_a_tampered_bundle_is_refused_before_upload(
        controller: ReleaseController, bundle: Callable[..., Path], signing: dict[str, Path],
        stores: Callable[[int], list[str]], tmp_path: Path, problem: str) -> None:
    (canary,) = stores(1)
    good = bundle("5.0")
    if problem == "changed-model":
        bad = _retar(good, tmp_path / "bad.tar.gz",
                     lambda name, data: data + b"\0" if name.endswith(".onnx") else data)
    elif problem == "changed-manifest":
        bad = _retar(good, tmp_path / "bad.tar.gz", lambda name, data: data.replace(
            b'"5.0"', b'"6.0"') if name.endswith("manifest.json") else data)
    else:
        other, _ = generate_keypair(tmp_path / "other-keys")
        bad = bundle("5.1", key=other)
    error = BundleError if problem == "changed-model" else SignatureError
    with pytest.raises(error):
        create(controller, bad, signing["public"], canaries=(canary,))
    assert "Contents" not in controller.store.s3.list_objects_v2(
        Bucket=controller.store.bucket)


# ------------------------------------------------------------- with the device API
class Device:
    """A store speaking the IoT Jobs MQTT API over its own certificate."""

    def __init__(self, client: LinkClient, thing: str) -> None:
        self.client, self.thing = client, thing
        self.replies: list[tuple[str, dict[str, Any]]] = []

    def on_publish(self, packet: mqtt5.PublishPacket) -> None:
        self.replies.append((packet.topic, json.loads(bytes(packet.payload))))

    def update(self, job: str, status: str, details: dict[str, str]) -> None:
        topic = f"$aws/things/{self.thing}/jobs/{job}/update"
        payload = json.dumps({"status": status, "statusDetails": details}).encode()

        def accepted() -> bool:
            seen = len(self.replies)
            self.client.publish(topic, payload)
            wait_until(lambda: len(self.replies) > seen, timeout=5)
            return any(t == topic + "/accepted" for t, _ in self.replies[seen:])

        # Retried until the job's rollout has made the execution available to the store.
        assert wait_until(accepted, timeout=30), self.replies[-3:]


@pytest.fixture
def device(local_cloud: LocalCloud, tmp_path: Path,
           connect: Callable[..., LinkClient]) -> Callable[[str], Device]:
    def make(thing: str) -> Device:
        credentials = LinkCredentials.load(tmp_path / "fleet" / thing)
        holder: list[Device] = []
        client = connect(credentials, on_publish=lambda p: holder[0].on_publish(p))
        made = Device(client, thing)
        holder.append(made)
        client.subscribe([f"$aws/things/{thing}/jobs/+/update/+"])
        return made
    return make


def test_abort_cancels_the_wave_and_rolls_back_the_stores_that_took_it(
        controller: ReleaseController, bundle: Callable[..., Path], signing: dict[str, Path],
        stores: Callable[[int], list[str]], device: Callable[[str], Device]) -> None:
    good, slow, idle = stores(3)
    first = create(controller, bundle("1.0"), signing["public"], canaries=(good,))
    # Set-up: 1.0 went to every store earlier (its record says so; its job is over).
    controller.iot.cancel_job(jobId=first.waves[0]["job_id"], force=True)
    first.status = COMPLETE
    controller.store.save(first)

    release = create(controller, bundle("2.0"), signing["public"],
                     canaries=(good, slow, idle), soak_s=0)
    assert release.previous is not None and release.previous["version"] == "1.0"
    wave_job = release.waves[0]["job_id"]
    device(good).update(wave_job, "SUCCEEDED", {**HEALTHY, "version": "2.0"})
    device(slow).update(wave_job, "IN_PROGRESS", {"stage": "probation", "version": "2.0",
                                                  "requests": "80", "error_rate": "0.0",
                                                  "p99_ms": "900.0"})
    decision = controller.step()
    assert decision.action == "abort"
    assert f"{slow} p99 900 ms > 250 ms" in decision.reason

    iot = controller.iot
    assert iot.describe_job(jobId=wave_job)["job"]["status"] == "CANCELED"
    record = controller.store.load("2.0")
    assert record.status == "aborted"
    assert [d["action"] for d in record.decisions][-2:] == ["abort", "rollback"]
    (rollback,) = record.rollbacks
    assert rollback["things"] == sorted([good, slow])  # not `idle`: it never started
    job = iot.describe_job(jobId=rollback["job_id"])["job"]
    assert sorted(job["targets"]) == sorted(
        iot.describe_thing(thingName=t)["thingArn"] for t in (good, slow))
    assert "abortConfig" not in job or not job["abortConfig"]
    document = JobDocument.from_json(iot.get_job_document(jobId=rollback["job_id"])["document"])
    assert (document.operation, document.version) == ("rollback", "1.0")
    assert (document.url, document.sha256) == (first.bundle["url"], first.bundle["sha256"])
    assert controller.step().action == "done"
    with pytest.raises(ReleaseError, match="already aborted"):
        controller.rollback("2.0")


def test_healthy_canaries_promote_the_next_wave_and_rollback_reaches_them(
        controller: ReleaseController, bundle: Callable[..., Path], signing: dict[str, Path],
        stores: Callable[[int], list[str]], device: Callable[[str], Device]) -> None:
    a, b = stores(2)
    first = create(controller, bundle("7.0"), signing["public"], canaries=(a,))
    controller.iot.cancel_job(jobId=first.waves[0]["job_id"], force=True)
    first.status = COMPLETE
    controller.store.save(first)
    release = create(controller, bundle("7.1"), signing["public"], canaries=(a, b), soak_s=0,
                     waves=(1, 100))
    for store in (a, b):
        device(store).update(release.waves[0]["job_id"], "SUCCEEDED",
                             {**HEALTHY, "version": "7.1"})
    decision = controller.step()
    assert decision.action == "promote", decision
    record = controller.store.load("7.1")
    assert record.current == 1 and record.waves[1]["job_id"]
    assert controller.iot.describe_job(jobId=record.waves[1]["job_id"])["job"]["targets"]
    record = controller.rollback("7.1", "a regression found in the lake")
    assert record.status == "rolled-back"
    assert set(record.rollbacks[0]["things"]) >= {a, b}
    assert record.decisions[-2]["reason"] == "a regression found in the lake"


def test_cli_create_status_and_abort(local_cloud: LocalCloud, bundle: Callable[..., Path],
                                     signing: dict[str, Path],
                                     stores: Callable[[int], list[str]],
                                     capsys: pytest.CaptureFixture[str]) -> None:
    (canary,) = stores(1)
    local = ["--local", str(local_cloud.directory)]
    version = "2026.12.06.1"
    assert cloud_sync(["release", "create", "--bundle", str(bundle(version)), "--public-key",
                       str(signing["public"]), "--canary", canary, "--waves", "100",
                       "--probation-s", "60", *local]) == 0
    assert f"wave 0 (canary): 1 stores, job instore-{version.replace('.', '_')}" in (
        capsys.readouterr().out)
    assert cloud_sync(["release", "status", version, "--json", *local]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["waves"][0]["executions"][0]["thing"] == canary
    assert status["waves"][0]["counts"] == {"QUEUED": 1}
    assert cloud_sync(["release", "promote", version, *local]) == 0
    assert capsys.readouterr().out.startswith("wait: 0 of 1 stores succeeded")
    assert cloud_sync(["release", "status", *local]) == 0  # the latest release
    text = capsys.readouterr().out
    assert f"release {version} (" in text and f"    {canary}: QUEUED" in text
    assert "wave 0 wait: 0 of 1 stores succeeded (1 QUEUED)" in text
    assert cloud_sync(["release", "abort", version, "--reason", "test over", *local]) == 0
    assert f"release {version}: aborted" in capsys.readouterr().out
    assert cloud_sync(["release", "abort", version, *local]) == 2
    assert "not rolling out" in capsys.readouterr().err
    store = ReleaseStore(local_cloud.boto3_client("s3"), LOCAL_RELEASES_BUCKET)
    assert store.load(version).decisions[-2]["reason"] == "test over"


def test_watch_steps_until_the_release_is_settled(
        controller: ReleaseController, bundle: Callable[..., Path], signing: dict[str, Path],
        stores: Callable[[int], list[str]], device: Callable[[str], Device]) -> None:
    (canary,) = stores(1)
    release = create(controller, bundle("9.0"), signing["public"], canaries=(canary,))
    assert controller.watch(timeout_s=0).action == "wait"  # gives up, nothing decided
    seen: list[Any] = []
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        if len(sleeps) == 2:  # the store refuses the bundle while the controller waits
            device(canary).update(release.waves[0]["job_id"], "FAILED", {
                "stage": "refused", "version": "9.0", "reason": "digest mismatch"})

    final = controller.watch(interval_s=0.5, on_decision=seen.append, sleep=sleep)
    assert final.action == "abort" and f"{canary} refused: digest mismatch" in final.reason
    assert [d.action for d in seen] == ["wait", "abort"]  # each new decision reported once
    assert sleeps == [0.5, 0.5]
    record = controller.store.load("9.0")
    assert record.status == "aborted"
    assert record.decisions[-1]["reason"] == "no store had taken the release: nothing to roll back"


def test_a_bundle_signed_in_kms_is_released_with_the_kms_public_key(
        controller: ReleaseController, local_cloud: LocalCloud, signing: dict[str, Path],
        stores: Callable[[int], list[str]], tmp_path: Path) -> None:
    kms = local_cloud.boto3_client("kms")
    key_id = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"][
        "KeyId"]

    class RawKmsSigner:
        """RAW, because moto's KMS lacks DIGEST (test_release_kms.py); equal on real KMS."""

        def sign(self, manifest: bytes) -> bytes:
            return encode_signature(kms.sign(KeyId=key_id, Message=manifest, MessageType="RAW",
                                             SigningAlgorithm="ECDSA_SHA_256")["Signature"])

    path = build_bundle(signing["models"], tmp_path / "kms.tar.gz", RawKmsSigner(),
                        version="8.0")
    (canary,) = stores(1)
    with pytest.raises(SignatureError):
        create(controller, path, signing["public"], canaries=(canary,))
    record = create(controller, path, KmsSigner(kms, key_id).public_key(), canaries=(canary,))
    assert record.version == "8.0" and record.waves[0]["job_id"]


def test_two_controllers_cannot_overwrite_each_others_decisions(
        controller: ReleaseController, bundle: Callable[..., Path], signing: dict[str, Path],
        stores: Callable[[int], list[str]]) -> None:
    (canary,) = stores(1)
    record = create(controller, bundle("4.0"), signing["public"], canaries=(canary,))
    mine, theirs = controller.store.load("4.0"), controller.store.load("4.0")
    mine.log(datetime.now(UTC), "wait", "mine")
    controller.store.save(mine)
    theirs.log(datetime.now(UTC), "wait", "theirs")
    with pytest.raises(ReleaseError, match="changed by another controller"):
        controller.store.save(theirs)
    assert controller.store.load("4.0").decisions[-1]["reason"] == "mine"
    record.etag = None  # a second `create` of the same version, racing the first
    with pytest.raises(ReleaseError, match="changed by another controller"):
        controller.store.save(record)
