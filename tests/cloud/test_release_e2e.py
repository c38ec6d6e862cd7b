"""The whole loop with real stores: `release create` sends a wave's job, the store's agent
(its updater on the Jobs MQTT API) downloads, verifies, serves and reports its health, the
controller reads that as a healthy wave, and a rollback takes the store back.

Then drills on a fleet of three real agents and simulated stores (issue #14): a good release
in waves, a bundle failing its smoke test, one that hurts the canary, stores offline during a
release, and kill -9 of an agent in the middle of an install."""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import os
import shutil
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from cloud_sync.cli import main as cloud_sync_main
from cloud_sync.local.broker import find_mosquitto
from cloud_sync.local.simulated_stores import Behaviour, SimulatedFleet
from cloud_sync.local.stack import LocalCloud
from cloud_sync.release import jobs
from cloud_sync.release.commands import LOCAL_RELEASES_BUCKET, LOCAL_ROLE_ARN
from cloud_sync.release.controller import ReleaseController
from cloud_sync.release.create import create_release
from cloud_sync.release.decide import PROMOTE, decide
from cloud_sync.release.document import INSTALL, JobDocument, presigned_placeholder
from cloud_sync.release.record import (
    ABORTED,
    COMPLETE,
    ROLLING_OUT,
    ReleaseRecord,
    ReleaseStore,
)
from cloud_sync.release.spec import DEFAULT_WAVES, RolloutSpec
from cloud_sync.release.waves import fleet_stores, plan_waves, thing_of
from edge_agent.broker import MosquittoBroker, free_port
from edge_agent.modeling.library import INSTALLED_DIR, SERVING_FILE
from edge_agent.updates.updater import DOWNLOADS_DIR
from models.bundle import build_bundle, load_private_key, verify_bundle
from tests.cloud.stores import RunningAgent, provision, served_version, shopper_traffic
from tests.ingestion.conftest import wait_until
from tests.model_bundles import Bundles, build_with_ranker, slow_ranker

ADMIN_KEY = "admin-key-release-e2e"
TERMINAL = {"SUCCEEDED", "FAILED", "REJECTED", "TIMED_OUT", "CANCELED"}
WAIT_S = 90.0


def served(agent: RunningAgent) -> str | None:
    return served_version(agent, ADMIN_KEY)


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
    # The very bundle the store serves is released first (a rebuilt test-1 would be another
    # bundle under the same version, which a store refuses).
    serving = bundles.build(tmp_path / "test-1.tar.gz", "test-1")
    agent.settings.update(model_public_key=str(bundles.public_key),
                          model_bundle=str(serving), model_update_poll_s="1",
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
        archive = tmp_path / f"{version}.tar.gz"
        if not archive.exists():
            bundles.build(archive, version)
        return create_release(iot=iot, s3=s3, bucket=bucket, role_arn=LOCAL_ROLE_ARN,
                              bundle=archive, public_key=bundles.public_key, spec=spec)

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



# ------------------------------------------------------------------------------------------
# Drills on a fleet: three real agents and SIMULATED simulated stores, all in the fleet group
# of their own local cloud (the session's cloud holds other tests' stores, which would never
# answer a wave, and its job minute is a real minute). Releases go through the real
# `cloud-sync release create` and `release watch` commands, in-process.

JOB_MINUTE_S = 2.0  # the stand-in's job "minute": the pacing of 10 stores a minute → 5 a s
SIMULATED = 50
PROBATION_S = "1"
WATCH_TIMEOUT_S = "180"
KIOSK_KEY = "kiosk-key-release-e2e"
PADDING_BYTES = 48 << 20  # makes download, verification and install last long enough to hit
_versions = itertools.count(2)


def next_version() -> str:
    """Newer than anything a store of the fleet serves, in the order drills run."""
    return f"test-{next(_versions)}"


@dataclass
class Fleet:
    cloud: LocalCloud
    agents: list[RunningAgent]
    sims: SimulatedFleet
    bundles: Bundles
    root: Path

    @property
    def canary(self) -> RunningAgent:
        return self.agents[0]

    def names(self) -> list[str]:
        return [a.store for a in self.agents] + list(self.sims.stores)

    def cli(self, *args: str) -> int:
        return cloud_sync_main(["release", *args, "--local", str(self.cloud.directory)])

    def create(self, archive: Path, *extra: str) -> int:
        return self.cli("create", "--bundle", str(archive), "--public-key",
                        str(self.bundles.public_key), "--canary", self.canary.store,
                        "--soak-s", "0", "--probation-s", PROBATION_S, "--max-error-rate",
                        "0.05", *extra)

    def watch(self) -> int:
        return self.cli("watch", "--interval-s", "0.5", "--timeout-s", WATCH_TIMEOUT_S)

    def record(self, version: str) -> ReleaseRecord:
        return ReleaseStore(self.cloud.boto3_client("s3"), LOCAL_RELEASES_BUCKET).load(version)


def _agent(cloud: LocalCloud, broker: MosquittoBroker, bundles: Bundles, root: Path,
           name: str) -> RunningAgent:
    (root / name).mkdir(parents=True)
    # Its own directory: the bundle folder (`bundles/` beside the database) is the store's.
    agent = RunningAgent(name, broker, root / name / "agent.db",
                         provision(cloud, name, root / "creds"), free_port())
    agent.settings.update(
        model_public_key=str(bundles.public_key), model_bundle=str(bundles.v1),
        model_update_poll_s="1", api_keys=json.dumps([
            {"name": "admin", "role": "admin", "key": ADMIN_KEY},
            {"name": "kiosk", "role": "kiosk", "key": KIOSK_KEY}]))
    agent.start()
    return agent


@pytest.fixture(scope="module")
def fleet(bundles: Bundles, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    if find_mosquitto() is None:
        pytest.skip("mosquitto is not installed")
    root = tmp_path_factory.mktemp("release-fleet")
    with LocalCloud(root / "cloud", jobs_seconds_per_minute=JOB_MINUTE_S) as cloud:
        # The bucket `release create --local` makes: here for drills that send jobs alone.
        cloud.boto3_client("s3").create_bucket(Bucket=LOCAL_RELEASES_BUCKET,
                                               CreateBucketConfiguration={
                                                   "LocationConstraint": cloud.region})
        broker = MosquittoBroker(config_dir=root / "mosquitto")
        broker.start()
        agents: list[RunningAgent] = []
        sims = SimulatedFleet.provision(cloud, [f"sim-{i:03d}" for i in range(SIMULATED)],
                                        root / "sim-creds")
        try:
            for n in range(3):
                agents.append(_agent(cloud, broker, bundles, root, f"shop-{n}"))
            sims.start()
            for agent in agents:
                wait_until(lambda a=agent: served(a) == "test-1", WAIT_S, "test-1 served")
            yield Fleet(cloud, agents, sims, bundles, root)
        finally:
            sims.close()
            for agent in agents:
                agent.stop()
            broker.close()


@pytest.fixture
def drill(fleet: Fleet) -> Iterator[Fleet]:
    """The fleet, left settled after each drill: no release rolling out, every store up."""
    yield fleet
    controller = ReleaseController(fleet.cloud.boto3_client("iot"),
                                   fleet.cloud.boto3_client("s3"), LOCAL_RELEASES_BUCKET,
                                   LOCAL_ROLE_ARN)
    latest = controller.store.latest()
    if latest is not None and latest.status == ROLLING_OUT:
        controller.abort(latest.version, "drill teardown")
    for agent in fleet.agents:
        if agent.process is None or agent.process.poll() is not None:
            agent.start()
    for sim in fleet.sims:
        sim.go_online()


def executions_by_wave(iot: Any, record: ReleaseRecord) -> list[list[dict[str, Any]]]:
    return [jobs.executions(iot, wave["job_id"]) if wave["job_id"] else []
            for wave in record.waves]


def jobs_of(iot: Any, store: str, record: ReleaseRecord) -> list[str]:
    """The jobs of `record`'s release that ever reached `store`."""
    summaries = iot.list_job_executions_for_thing(thingName=store)["executionSummaries"]
    return [s["jobId"] for s in summaries if record.release_id in s["jobId"]]


def test_a_good_release_reaches_every_store_wave_after_wave(drill: Fleet, tmp_path: Path
                                                             ) -> None:
    version = next_version()
    assert drill.create(drill.bundles.build(tmp_path / "b.tar.gz", version)) == 0
    assert drill.watch() == 0
    record = drill.record(version)
    assert record.status == COMPLETE
    assert record.waves[0]["things"] == [drill.canary.store]
    assert sorted(t for w in record.waves for t in w["things"]) == sorted(drill.names())
    assert len(record.waves) == 4  # canary, 10 %, 50 %, 100 %
    for agent in drill.agents:
        assert served(agent) == version
    assert drill.sims.serving(version) == sorted(drill.sims.stores)
    # No store of wave k+1 got its job before every store of wave k had succeeded.
    iot = drill.cloud.boto3_client("iot")
    waves = executions_by_wave(iot, record)
    for k, (wave, executions) in enumerate(zip(record.waves, waves, strict=True)):
        assert sorted(thing_of(e["thingArn"]) for e in executions) == sorted(wave["things"])
        assert {e["status"] for e in executions} == {"SUCCEEDED"}
        if k == 0:
            continue
        previous_done = max(e["lastUpdatedAt"] for e in waves[k - 1])
        created = iot.describe_job(jobId=wave["job_id"])["job"]["createdAt"]
        assert created >= previous_done, f"wave {k} started before wave {k - 1} succeeded"
        assert min(e["queuedAt"] for e in executions) >= previous_done


def test_a_bundle_failing_its_smoke_test_stops_at_the_canary(drill: Fleet, tmp_path: Path
                                                              ) -> None:
    before = {a.store: served(a) for a in drill.agents}
    version = next_version()
    archive = build_with_ranker(drill.bundles, tmp_path / "slow.tar.gz", version,
                                slow_ranker())
    assert drill.create(archive) == 0
    assert drill.watch() == 1
    record = drill.record(version)
    assert record.status == ABORTED
    iot = drill.cloud.boto3_client("iot")
    (canary,) = jobs.executions(iot, record.waves[0]["job_id"])
    details = canary["statusDetails"]["detailsMap"]
    assert canary["status"] == "FAILED" and details["stage"] == "refused", details
    assert details["reason"].startswith("SmokeTestFailed"), details
    assert [w["job_id"] for w in record.waves[1:]] == [None] * (len(record.waves) - 1)
    for store in drill.names()[1:]:
        assert jobs_of(iot, store, record) == [], f"{store} was offered the release"
    assert {a.store: served(a) for a in drill.agents} == before


def test_a_release_that_hurts_the_canary_is_rolled_back_there_and_aborted(
        drill: Fleet, tmp_path: Path) -> None:
    before = served(drill.canary)
    version = next_version()
    with shopper_traffic(drill.canary, KIOSK_KEY):
        # No request is this fast: the canary's own probation breaks the bound under load.
        assert drill.create(drill.bundles.build(tmp_path / "b.tar.gz", version),
                            "--max-p99-ms", "0.5", "--probation-s", "60") == 0
        assert drill.watch() == 1
    record = drill.record(version)
    assert record.status == ABORTED
    iot = drill.cloud.boto3_client("iot")
    (canary,) = jobs.executions(iot, record.waves[0]["job_id"])
    details = canary["statusDetails"]["detailsMap"]
    assert canary["status"] == "FAILED" and details["stage"] == "rolled-back", details
    assert "p99" in details["reason"]
    assert served(drill.canary) == before
    for store in drill.names()[1:]:
        assert jobs_of(iot, store, record) == [], f"{store} was offered the release"


def test_stores_offline_during_a_release_get_it_when_back(drill: Fleet, tmp_path: Path
                                                           ) -> None:
    agent, sim = drill.agents[1], drill.sims["sim-000"]
    agent.stop()
    sim.go_offline()
    version = next_version()
    assert drill.create(drill.bundles.build(tmp_path / "b.tar.gz", version)) == 0
    outcome: list[int] = []
    watcher = threading.Thread(target=lambda: outcome.append(drill.watch()))
    watcher.start()
    iot = drill.cloud.boto3_client("iot")
    offline = {agent.store, sim.name}

    def held_up() -> bool:
        """The wave in flight has an offline store, and every other store of it succeeded."""
        record = drill.record(version)
        wave = record.waves[record.current]
        if not wave["job_id"] or not offline & set(wave["things"]):
            return False
        statuses = {thing_of(e["thingArn"]): e["status"]
                    for e in jobs.executions(iot, wave["job_id"])}
        return all(statuses.get(s) == ("QUEUED" if s in offline else "SUCCEEDED")
                   for s in wave["things"])

    try:
        wait_until(held_up, WAIT_S, "a wave waiting only for an offline store")
        held = drill.record(version).current
        time.sleep(3 * JOB_MINUTE_S)  # the controller keeps waiting; nothing times out
        assert held_up() and drill.record(version).current == held
        assert drill.record(version).status == ROLLING_OUT
    finally:  # back online either way, so the watch ends
        agent.start()
        sim.go_online()
        watcher.join()
    assert outcome == [0]
    assert served(agent) == version and sim.serving == version
    assert drill.sims.serving(version) == sorted(drill.sims.stores)


def completed_release(drill: Fleet, tmp_path: Path) -> ReleaseRecord:
    """The bucket's last completed release (made here when no drill left one)."""
    store = ReleaseStore(drill.cloud.boto3_client("s3"), LOCAL_RELEASES_BUCKET)
    done = [r for r in map(store.load, store.versions()) if r.status == COMPLETE]
    if done:
        return done[-1]
    version = next_version()
    assert drill.create(drill.bundles.build(tmp_path / "good.tar.gz", version)) == 0
    assert drill.watch() == 0
    return drill.record(version)


BAD_STORES = {  # behaviour, and the words of the controller's abort about it
    "refuses": (Behaviour(fail_reason="disk full"), "{store} refused: disk full"),
    "unhealthy": (Behaviour(error_rate=0.5), "{store} error rate 0.5 > 0.05"),
}


@pytest.mark.parametrize("problem", sorted(BAD_STORES))
def test_a_bad_store_in_a_later_wave_aborts_and_every_store_that_took_it_goes_back(
        drill: Fleet, tmp_path: Path, problem: str) -> None:
    previous = completed_release(drill, tmp_path).version
    version = next_version()
    archive = drill.bundles.build(tmp_path / "b.tar.gz", version)
    # The waves follow from the release id: pick a simulated store of the wave after the
    # canary to misbehave.
    release_id = jobs.release_id_for(version, hashlib.sha256(archive.read_bytes()).hexdigest())
    _, (_, second) = plan_waves(release_id, fleet_stores(drill.cloud.boto3_client("iot")),
                                [drill.canary.store], DEFAULT_WAVES)[:2]
    bad = next(s for s in second if s.startswith("sim-"))
    behaviour, words = BAD_STORES[problem]
    drill.sims[bad].behaviour = behaviour
    try:
        assert drill.create(archive) == 0
        assert drill.watch() == 1
    finally:
        drill.sims[bad].behaviour = Behaviour()
    record = drill.record(version)
    assert record.status == ABORTED and record.current == 1
    abort = next(d for d in record.decisions if d["action"] == "abort")
    assert words.format(store=bad) in abort["reason"], abort
    iot = drill.cloud.boto3_client("iot")
    succeeded = {thing_of(e["thingArn"]) for wave in executions_by_wave(iot, record)
                 for e in wave if e["status"] == "SUCCEEDED"}
    (rollback,) = record.rollbacks
    # Those that succeeded, and any caught in progress by the abort's cancel.
    took = set(rollback["things"])
    assert rollback["version"] == previous and succeeded <= took
    assert drill.canary.store in took and (bad in took) == (problem == "unhealthy")
    for execution in jobs.executions(iot, rollback["job_id"]):
        assert finished(iot, rollback["job_id"], thing_of(execution["thingArn"])
                        )["status"] == "SUCCEEDED"
    # Every store that took it serves the previous release again: the real agents (the
    # canary, and any the waves put in wave 1) and the simulated ones.
    agents = {agent.store: agent for agent in drill.agents}
    for store in took & set(agents):
        assert served(agents[store]) == previous, store
    assert took - set(agents) <= set(drill.sims.serving(previous))
    for store in (s for wave in record.waves[2:] for s in wave["things"]):
        assert jobs_of(iot, store, record) == [], f"{store} was offered the release"


def padded_bundle(bundles: Bundles, out: Path, version: str) -> Path:
    """A valid bundle made large by an extra array file the models never read."""
    models_dir = out.with_name(f"{out.name}-models")
    shutil.copytree(bundles.models_dir, models_dir)
    (models_dir / "padding.npz").write_bytes(os.urandom(PADDING_BYTES))
    return build_bundle(models_dir, out, load_private_key(bundles.private_key),
                        version=version)


def send_job(cloud: LocalCloud, store: str, archive: Path, version: str) -> str:
    """One install job for one store, outside any release (the drill is the store's)."""
    data = archive.read_bytes()
    key = f"drills/{version}/bundle.tar.gz"
    cloud.boto3_client("s3").put_object(Bucket=LOCAL_RELEASES_BUCKET, Key=key, Body=data)
    document = JobDocument(operation=INSTALL, release=version, version=version,
                           url=presigned_placeholder(LOCAL_RELEASES_BUCKET, key),
                           sha256=hashlib.sha256(data).hexdigest(), bytes=len(data),
                           probation_s=1, max_error_rate=0.05, max_p99_ms=5000.0)
    iot = cloud.boto3_client("iot")
    job = f"drill-{uuid.uuid4().hex[:12]}"
    iot.create_job(jobId=job, targets=[iot.describe_thing(thingName=store)["thingArn"]],
                   document=document.to_json(), presignedUrlConfig={
                       "roleArn": LOCAL_ROLE_ARN, "expiresInSec": 3600})
    return job


def in_window(folder: Path, version: str, point: str) -> bool:
    """Whether the store's bundle folder shows the install at `point` right now."""
    installed = folder / INSTALLED_DIR
    if point == "download":  # the archive is being written beside its final name
        return any(folder.glob(f"{DOWNLOADS_DIR}/*.partial"))
    if point == "install":  # verified, being copied into installed/ under a staging name
        return any(installed.glob(f".{version}.*.partial"))
    # swap: installed, not yet recorded as served (smoke test, load, swap)
    record = folder / SERVING_FILE
    return (installed / version).is_dir() and (
        not record.exists() or json.loads(record.read_text())["version"] != version)


def freeze_at(agent: RunningAgent, folder: Path, version: str, point: str) -> bool:
    """SIGSTOP the agent once its install reaches `point`; True if it is frozen inside it."""
    assert agent.process is not None
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, ValueError):
            if in_window(folder, version, point):
                os.kill(agent.process.pid, signal.SIGSTOP)
                return in_window(folder, version, point)
    return False


def first_answer(agent: RunningAgent) -> str | None:
    """What a restarted agent serves as soon as it answers at all."""
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            response = httpx.get(f"http://127.0.0.1:{agent.port}/v1/admin/models",
                                 headers={"X-API-Key": ADMIN_KEY}, timeout=10)
            if response.status_code == 200:
                active = response.json().get("active")
                return active["version"] if active else None
        time.sleep(0.05)
    raise AssertionError(f"{agent.store} did not answer after its restart")


def test_kill_9_mid_install_leaves_a_verified_model_served_and_the_job_completes(
        drill: Fleet, tmp_path: Path) -> None:
    agent = drill.agents[2]
    folder = agent.db.parent / "bundles"
    before = served(agent)
    version = next_version()
    job = send_job(drill.cloud, agent.store,
                   padded_bundle(drill.bundles, tmp_path / "big.tar.gz", version), version)
    for point in ("download", "install", "swap"):
        assert freeze_at(agent, folder, version, point), f"never frozen mid-{point}"
        agent.kill()
        agent.start()
        now = first_answer(agent)
        assert now in (before, version), f"after kill -9 mid-{point}: serving {now}"
        verify_bundle(folder / INSTALLED_DIR / now, drill.bundles.public_key)
    done = finished(drill.cloud.boto3_client("iot"), job, agent.store)
    assert done["status"] == "SUCCEEDED", done["statusDetails"]
    assert done["statusDetails"]["detailsMap"]["version"] == version
    assert served(agent) == version
    # Nothing half-written is left behind by the killed installs.
    assert list(folder.glob(f"{DOWNLOADS_DIR}/*")) == []
    assert list((folder / INSTALLED_DIR).glob(".*")) == []


PROMPT_S = 15.0  # "at once": well inside the probation below


def test_an_abort_during_the_canarys_probation_sends_it_back_at_once(
        drill: Fleet, tmp_path: Path) -> None:
    """docs/releases.md: a force-cancelled store in probation goes back by itself."""
    previous = completed_release(drill, tmp_path).version
    version = next_version()
    assert drill.create(drill.bundles.build(tmp_path / "b.tar.gz", version),
                        "--probation-s", "40") == 0
    iot = drill.cloud.boto3_client("iot")
    job = drill.record(version).waves[0]["job_id"]

    def stage() -> str | None:
        execution = iot.describe_job_execution(jobId=job, thingName=drill.canary.store)
        return execution["execution"].get("statusDetails", {}).get("detailsMap", {}).get(
            "stage")

    wait_until(lambda: stage() == "probation", WAIT_S, "the canary in probation")
    assert served(drill.canary) == version
    assert drill.cli("abort", "--reason", "drill: abort in probation") == 0
    wait_until(lambda: served(drill.canary) == previous, PROMPT_S,
               f"the canary back on {previous}")
