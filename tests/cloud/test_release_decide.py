"""The rollout analysis as data: the controller's decision on explicit execution data
(the shape of `describe_job_execution()["execution"]`), the wave plan and the spec."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from cloud_sync.release.decide import ABORT, COMPLETE, PROMOTE, WAIT, decide
from cloud_sync.release.spec import RolloutSpec, SpecError
from cloud_sync.release.waves import WaveError, plan_waves
from models.bundle.version import is_newer, version_key

NOW = datetime(2026, 12, 6, 8, 0, tzinfo=UTC)
SPEC = RolloutSpec(soak_s=600, max_error_rate=0.01, max_p99_ms=250.0)
WAVE = ["store-1", "store-2"]
HEALTHY = {"stage": "serving", "version": "2.0", "requests": "900", "error_rate": "0.001",
           "p99_ms": "40.0"}


def execution(store: str, status: str, details: dict[str, str] | None = None,
              updated: datetime = NOW - timedelta(hours=1)) -> dict[str, Any]:
    return {"jobId": "instore-2_0-abcd1234-w0", "status": status,
            "thingArn": f"arn:aws:iot:eu-west-1:123456789012:thing/{store}",
            "statusDetails": {"detailsMap": details or {}}, "lastUpdatedAt": updated,
            "executionNumber": 1}


def run(*executions: dict[str, Any], last: bool = False, job_status: str = "IN_PROGRESS",
        now: datetime = NOW) -> tuple[str, str]:
    d = decide(SPEC, "2.0", WAVE, list(executions), now, last_wave=last, job_status=job_status)
    return d.action, d.reason


@pytest.mark.parametrize(
    ("executions", "action", "words"),
    [([], WAIT, "0 of 2 stores succeeded (2 NOT_CREATED)"),
     ([execution("store-1", "QUEUED"), execution("store-2", "QUEUED")], WAIT, "2 QUEUED"),
     ([execution("store-1", "SUCCEEDED", HEALTHY), execution("store-2", "IN_PROGRESS",
       {"stage": "probation", "version": "2.0"})], WAIT, "1 of 2 stores succeeded"),
     ([execution("store-1", "SUCCEEDED", HEALTHY), execution("store-2", "FAILED",
       {"stage": "refused", "version": "2.0", "reason": "signature does not verify"})],
      ABORT, "store-2 FAILED; store-2 refused: signature does not verify"),
     ([execution("store-1", "TIMED_OUT"), execution("store-2", "QUEUED")], ABORT,
      "store-1 TIMED_OUT"),
     ([execution("store-1", "IN_PROGRESS", {**HEALTHY, "stage": "probation",
                                             "error_rate": "0.05"})],
      ABORT, "store-1 error rate 0.05 > 0.01 over 900 requests"),
     ([execution("store-1", "SUCCEEDED", {**HEALTHY, "p99_ms": "400"}),
       execution("store-2", "SUCCEEDED", HEALTHY)], ABORT, "store-1 p99 400 ms > 250 ms"),
     ([execution("store-1", "SUCCEEDED", {"stage": "serving", "version": "2.0"}),
       execution("store-2", "SUCCEEDED", HEALTHY)], ABORT,
      "store-1 succeeded without reporting error_rate and p99_ms"),
     ([execution("store-1", "SUCCEEDED", {**HEALTHY, "version": "1.0"}),
       execution("store-2", "SUCCEEDED", HEALTHY)], ABORT, "store-1 succeeded but serves 1.0"),
     ([execution("store-1", "SUCCEEDED", {**HEALTHY, "error_rate": "lots"})], ABORT,
      "store-1 sent unreadable status details"),
     ([execution("store-1", "SUCCEEDED", HEALTHY), execution("store-2", "SUCCEEDED", HEALTHY)],
      PROMOTE, "all 2 stores succeeded and stayed healthy for 3600 s")],
    ids=["no-executions", "queued", "half-done", "failed", "timed-out", "error-rate",
         "p99", "no-health", "wrong-version", "unreadable", "promote"],
)
def test_decision(executions: list[dict[str, Any]], action: str, words: str) -> None:
    got_action, reason = run(*executions)
    assert (got_action, words in reason) == (action, True), reason


def test_soak_waits_from_the_last_success_then_promotes_or_completes() -> None:
    early = execution("store-1", "SUCCEEDED", HEALTHY, updated=NOW - timedelta(hours=2))
    late = execution("store-2", "SUCCEEDED", HEALTHY, updated=NOW - timedelta(seconds=100))
    action, reason = run(early, late)
    assert action == WAIT and "until 2026-12-06T08:08:20+00:00" in reason
    # The same words on the next step: a watch records one wait, not one per poll.
    assert run(early, late, now=NOW + timedelta(seconds=5)) == (action, reason)
    assert run(early, late, now=NOW + timedelta(seconds=500))[0] == PROMOTE
    assert run(early, late, now=NOW + timedelta(seconds=500), last=True)[0] == COMPLETE


def test_a_job_canceled_outside_the_controller_aborts() -> None:
    action, reason = run(execution("store-1", "SUCCEEDED", HEALTHY),
                         execution("store-2", "QUEUED"), job_status="CANCELED")
    assert action == ABORT and "canceled outside the controller" in reason


def test_waves_are_deterministic_cumulative_and_canaries_first() -> None:
    fleet = [f"store-{i:03d}" for i in range(50)]
    waves = plan_waves("2_0-abcd1234", reversed(fleet), ["store-007"], [10, 50, 100])
    assert waves == plan_waves("2_0-abcd1234", fleet, ["store-007"], [10, 50, 100])
    assert [(label, len(things)) for label, things in waves] == [
        ("canary", 1), ("10%", 5), ("50%", 20), ("100%", 24)]
    everyone = [t for _, things in waves for t in things]
    assert sorted(everyone) == fleet and len(set(everyone)) == len(fleet)
    other = plan_waves("3_0-ffff0000", fleet, ["store-007"], [10, 50, 100])
    assert other[1][1] != waves[1][1]  # another release meets other stores first
    # A small fleet: no empty wave.
    small = plan_waves("r", ["a", "b"], [], [10, 50, 100])
    assert [(label, len(things)) for label, things in small] == [("10%", 1), ("100%", 1)]
    with pytest.raises(WaveError, match="store-999"):
        plan_waves("r", fleet, ["store-999"], [100])
    with pytest.raises(WaveError, match="no stores"):
        plan_waves("r", [], [], [100])


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [({"waves": (10, 50)}, "ending at 100"), ({"waves": (50, 10, 100)}, "grow"),
     ({"waves": (0, 100)}, "grow"), ({"canaries": ("a", "a")}, "twice"),
     ({"max_error_rate": 1.5}, "share"), ({"max_p99_ms": 0}, "positive"),
     ({"probation_s": 10**7}, "7-day")],
)
def test_bad_specs_are_refused(kwargs: dict[str, Any], words: str) -> None:
    with pytest.raises(SpecError, match=words):
        RolloutSpec(**kwargs)


def test_spec_round_trips_and_sets_the_iot_job_config() -> None:
    spec = RolloutSpec(canaries=("a",), probation_s=600)
    assert RolloutSpec.from_dict(spec.to_dict()) == spec
    args = spec.create_job_arguments("arn:aws:iam::1:role/r")
    assert args["timeoutConfig"] == {"inProgressTimeoutInMinutes": 10 + 30}
    assert args["presignedUrlConfig"] == {"roleArn": "arn:aws:iam::1:role/r",
                                          "expiresInSec": 3600}
    assert {c["failureType"] for c in args["abortConfig"]["criteriaList"]} == {
        "FAILED", "REJECTED", "TIMED_OUT"}
    assert "exponentialRate" in args["jobExecutionsRolloutConfig"]


def test_versions_compare_digit_runs_as_numbers() -> None:
    assert is_newer("2026.12.10", "2026.12.9")
    assert is_newer("test-10", "test-2")
    assert not is_newer("1.2.3", "1.2.3")
    assert sorted(["1.10", "1.9", "1.9.1"], key=version_key) == ["1.9", "1.9.1", "1.10"]
