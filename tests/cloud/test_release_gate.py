"""The release gate on simulated stores, through the real `cloud-sync release` commands on a
local cloud of their own (moto's IoT and S3, the local IoT Jobs service, TLS Mosquitto):
a canary whose recommendation click-through collapses is held and rolled back, one whose
click-through holds is promoted; a wave with an offline store goes on at its deadline and
the store takes the release when it is back."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from sklearn.linear_model import LinearRegression

from cloud_sync.cli import main as cloud_sync_main
from cloud_sync.local.broker import find_mosquitto
from cloud_sync.local.simulated_stores import Behaviour, SimulatedFleet
from cloud_sync.local.stack import LocalCloud
from cloud_sync.release.commands import LOCAL_RELEASES_BUCKET
from cloud_sync.release.record import ABORTED, COMPLETE, ReleaseRecord, ReleaseStore
from models import onnx_export
from models.bundle import build_bundle, generate_keypair, load_private_key

JOB_MINUTE_S = 2.0  # the stand-in's job minute: 10 stores a "minute" start within 2 s
STORES = [f"gate-{i}" for i in range(5)]
CANARY = STORES[0]
WAIT_S = 60.0
_versions = itertools.count(1)


@dataclass
class Gate:
    cloud: LocalCloud
    sims: SimulatedFleet
    root: Path  # keys/, models/ (one tiny model: simulated stores load nothing)

    def cli(self, *args: str) -> int:
        return cloud_sync_main(["release", *args, "--local", str(self.cloud.directory)])

    def release(self, *extra: str) -> str:
        """Create a release of a new version with no soak or probation; its version."""
        version = f"gate-{next(_versions)}"
        archive = build_bundle(self.root / "models", self.root / f"{version}.tar.gz",
                               load_private_key(self.root / "keys" / "bundle_signing_key.pem"),
                               version=version)
        assert self.cli("create", "--bundle", str(archive), "--public-key",
                        str(self.root / "keys" / "bundle_signing_key.pub.pem"), "--soak-s", "0",
                        "--probation-s", "0", *extra) == 0
        return version

    def watch(self) -> int:
        return self.cli("watch", "--interval-s", "0.3", "--timeout-s", str(WAIT_S))

    def record(self, version: str) -> ReleaseRecord:
        return ReleaseStore(self.cloud.boto3_client("s3"), LOCAL_RELEASES_BUCKET).load(version)

    def decisions(self, version: str) -> list[tuple[str, str]]:
        return [(d["action"], d["reason"]) for d in self.record(version).decisions]


@pytest.fixture(scope="module")
def gate(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gate]:
    if find_mosquitto() is None:
        pytest.skip("mosquitto is not installed")
    root = tmp_path_factory.mktemp("release-gate")
    generate_keypair(root / "keys")
    (root / "models").mkdir()
    x = np.arange(20, dtype=np.float32).reshape(10, 2)
    onnx_export.save(onnx_export.to_onnx_float32(LinearRegression().fit(x, x[:, 0]), 2),
                     root / "models" / "timing.onnx")
    with LocalCloud(root / "cloud", jobs_seconds_per_minute=JOB_MINUTE_S) as cloud:
        sims = SimulatedFleet.provision(cloud, STORES, root / "creds", workers=4)
        try:
            sims.start()
            yield Gate(cloud, sims, root)
        finally:
            sims.close()


@pytest.fixture
def fleet(gate: Gate) -> Iterator[Gate]:
    """Every store healthy and online before and after each test."""
    for sim in gate.sims:
        sim.behaviour = Behaviour()
    yield gate
    for sim in gate.sims:
        sim.behaviour = Behaviour()
        sim.go_online()


def test_a_canary_whose_click_through_collapses_is_held_and_rolled_back(fleet: Gate) -> None:
    good = fleet.release("--canary", CANARY)
    assert fleet.watch() == 0 and fleet.sims.serving(good) == STORES
    # Health is fine; shoppers stop tapping what the new version recommends.
    fleet.sims[CANARY].behaviour = Behaviour(ctr_before=0.08, ctr_after=0.02, impressions=1500)
    bad = fleet.release("--canary", CANARY, "--max-ctr-drop", "0.3")
    assert fleet.watch() == 1
    record = fleet.record(bad)
    assert record.status == ABORTED and record.current == 0
    action, reason = fleet.decisions(bad)[-2]  # the abort, then the rollback it sent
    assert action == "abort"
    assert "click-through 8.00% -> 2.00% over 1500/1500 impressions" in reason
    assert "75% lower, more than the 30% allowed" in reason
    (rollback,) = record.rollbacks
    assert rollback["things"] == [CANARY] and rollback["version"] == good
    assert fleet.sims.wait_serving(good, WAIT_S, [CANARY])
    assert fleet.sims.serving(bad) == []  # no other store was ever offered it


def test_a_release_whose_click_through_holds_is_promoted(fleet: Gate) -> None:
    fleet.sims[CANARY].behaviour = Behaviour(ctr_before=0.08, ctr_after=0.075,
                                             impressions=1500)
    version = fleet.release("--canary", CANARY, "--max-ctr-drop", "0.3")
    assert fleet.watch() == 0
    assert fleet.record(version).status == COMPLETE
    promoted = [reason for action, reason in fleet.decisions(version) if action == "promote"]
    assert "click-through 8.00% -> 7.50% over 1500/1500 impressions (1 stores)" in promoted[0]
    assert "health evidence from 1 of 1 stores" in promoted[0]
    # The later waves pool 400 impressions a store: below 1,000 a side is no evidence.
    assert fleet.sims.serving(version) == STORES


def test_a_quiet_store_is_counted_and_too_little_evidence_stops_the_wave(fleet: Gate) -> None:
    fleet.sims[CANARY].behaviour = Behaviour(requests=3)
    version = fleet.release("--canary", CANARY, "--min-evidence-share", "0.5")
    assert fleet.watch() == 1
    action, reason = fleet.decisions(version)[-2]
    assert action == "abort"
    assert "too little health evidence: health evidence from 0 of 1 stores (1 quiet" in reason


def test_a_wave_goes_on_at_its_deadline_and_an_offline_store_takes_it_when_back(
        fleet: Gate) -> None:
    away = fleet.sims[STORES[-1]]
    away.go_offline()
    version = fleet.release("--waves", "100", "--wave-deadline-s", "4",
                            "--min-reported-share", "0.5")
    assert fleet.watch() == 0
    record = fleet.record(version)
    assert record.status == COMPLETE
    complete = [reason for action, reason in fleet.decisions(version) if action == "complete"]
    assert "past the deadline, judged on 4 of 5 stores" in complete[0]
    assert away.serving != version
    away.go_online()  # its execution stayed queued: it takes the release now
    assert fleet.sims.wait_serving(version, WAIT_S, [away.name])


def test_past_the_deadline_too_few_reports_keep_the_wave_waiting(fleet: Gate) -> None:
    for sim in list(fleet.sims)[2:]:
        sim.go_offline()
    version = fleet.release("--waves", "100", "--wave-deadline-s", "1",
                            "--min-reported-share", "0.8")
    assert fleet.cli("watch", "--interval-s", "0.3", "--timeout-s", "6") == 1
    action, reason = fleet.decisions(version)[-1]
    assert action == "wait"
    assert "past the wave's deadline with 2 of 5 stores succeeded, 4 needed" in reason
    for sim in fleet.sims:
        sim.go_online()
    assert fleet.watch() == 0


def test_a_store_back_after_a_rollback_is_not_offered_the_rolled_back_release(
        fleet: Gate) -> None:
    before = fleet.release("--waves", "100")
    assert fleet.watch() == 0
    away = fleet.sims[STORES[-1]]
    away.go_offline()
    version = fleet.release("--waves", "100", "--wave-deadline-s", "2")
    assert fleet.watch() == 0  # complete without the offline store, its execution queued
    assert fleet.cli("rollback", "--reason", "a regression found in the lake") == 0
    assert fleet.sims.wait_serving(before, WAIT_S, STORES[:-1])
    away.go_online()  # the wave's job was cancelled with the rollback: nothing to take
    fleet.sims.wait_serving(version, 3 * JOB_MINUTE_S, [away.name])
    assert away.serving == before
