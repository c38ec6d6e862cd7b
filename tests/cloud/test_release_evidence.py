"""The release gate's rules on explicit execution data: click-through before and after the
swap pooled over a wave, the impressions it needs, health evidence and quiet stores, and
the wave's deadline for stores that do not report."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from cloud_sync.release.decide import ABORT, COMPLETE, PROMOTE, WAIT, decide, wave_evidence
from cloud_sync.release.document import DocumentError, StatusDetails
from cloud_sync.release.spec import RolloutSpec, SpecError

NOW = datetime(2026, 12, 6, 8, 0, tzinfo=UTC)
STARTED = NOW - timedelta(hours=2)
SPEC = RolloutSpec(soak_s=0, max_ctr_drop=0.3, min_impressions=1000, min_requests=20,
                   wave_deadline_s=3600, min_reported_share=0.5)


def report(store: str, status: str = "SUCCEEDED", *, requests: int = 500,
           ctr: tuple[float, float] | None = None, impressions: int = 600) -> dict[str, Any]:
    details = StatusDetails("serving", "2.0", requests=requests, error_rate=0.0, p99_ms=40.0)
    if ctr is not None:
        details = StatusDetails("serving", "2.0", requests=requests, error_rate=0.0,
                                p99_ms=40.0, ctr_before=ctr[0], impressions_before=impressions,
                                ctr_after=ctr[1], impressions_after=impressions)
    return {"status": status, "thingArn": f"arn:aws:iot:eu-west-1:1:thing/{store}",
            "statusDetails": {"detailsMap": details.to_map() if status == "SUCCEEDED" else {}},
            "lastUpdatedAt": NOW - timedelta(hours=1)}


def run(wave: list[str], *executions: dict[str, Any], spec: RolloutSpec = SPEC,
        last: bool = False) -> tuple[str, str]:
    d = decide(spec, "2.0", wave, list(executions), NOW, last_wave=last, started=STARTED)
    return d.action, d.reason


def test_status_details_carry_click_through_as_strings_and_check_it() -> None:
    details = StatusDetails("serving", "2.0", requests=9, error_rate=0.0, p99_ms=1.0,
                            ctr_before=0.08, impressions_before=1200, ctr_after=0.075,
                            impressions_after=900)
    as_map = details.to_map()
    assert as_map["ctr_after"] == "0.075" and as_map["impressions_before"] == "1200"
    assert all(isinstance(v, str) and v for v in as_map.values())
    assert StatusDetails.from_map(as_map) == details
    with pytest.raises(DocumentError, match="ctr_after is a share"):
        StatusDetails("serving", "2.0", ctr_after=1.5)
    with pytest.raises(DocumentError, match="impressions_after"):
        StatusDetails.from_map({"stage": "serving", "version": "2.0", "impressions_after": "x"})
    with pytest.raises(DocumentError, match="non-negative"):
        StatusDetails("serving", "2.0", impressions_before=-1)


def test_a_pooled_click_through_collapse_aborts_even_before_the_wave_is_done() -> None:
    # Two stores of three reported: 2 x 600 impressions a side, 8 % -> 4 %.
    action, reason = run(["a", "b", "c"], report("a", ctr=(0.08, 0.04)),
                         report("b", ctr=(0.08, 0.04)), report("c", "IN_PROGRESS"))
    assert action == ABORT
    assert "click-through 8.00% -> 4.00% over 1200/1200 impressions (2 stores" in reason
    assert "50% lower, more than the 30% allowed" in reason


def test_a_fall_within_the_threshold_promotes_and_says_so() -> None:
    action, reason = run(["a", "b"], report("a", ctr=(0.08, 0.07)), report("b", ctr=(0.1, 0.09)))
    assert action == PROMOTE
    assert "click-through 9.00% -> 8.00% over 1200/1200 impressions (2 stores)" in reason


@pytest.mark.parametrize("impressions", [100, 999 // 2])
def test_too_few_impressions_is_no_evidence_and_does_not_block(impressions: int) -> None:
    action, reason = run(["a", "b"], report("a", ctr=(0.1, 0.0), impressions=impressions),
                         report("b", ctr=(0.1, 0.0), impressions=impressions))
    assert action == PROMOTE
    assert f"no click-through evidence ({2 * impressions}/{2 * impressions} impressions" in reason
    assert "1000 needed a side" in reason


def test_stores_that_did_not_measure_both_sides_are_left_out_of_the_pool() -> None:
    action, reason = run(["a", "b"], report("a", ctr=(0.08, 0.02), impressions=1500),
                         report("b"))  # a first install: no click-through reported
    assert action == ABORT and "(1 stores:" in reason


def test_quiet_stores_are_counted_not_judged() -> None:
    quiet = report("q", requests=3)
    quiet["statusDetails"]["detailsMap"]["error_rate"] = "0.667"  # 2 of 3: noise
    action, reason = run(["a", "q"], report("a"), quiet)
    assert action == PROMOTE
    assert "health evidence from 1 of 2 stores (1 quiet: < 20 requests)" in reason
    strict = RolloutSpec(soak_s=0, min_evidence_share=0.75)
    action, reason = run(["a", "q"], report("a"), quiet, spec=strict)
    assert action == ABORT
    assert reason.startswith("too little health evidence: health evidence from 1 of 2 stores")


def test_the_wave_deadline_judges_the_stores_that_reported() -> None:
    wave = ["a", "b", "c", "d"]
    early = RolloutSpec(soak_s=0, wave_deadline_s=3 * 3600)  # not passed yet
    action, reason = run(wave, report("a"), report("b"), report("c"), report("d", "QUEUED"),
                         spec=early)
    assert (action, reason) == (WAIT, "3 of 4 stores succeeded (1 QUEUED, 3 SUCCEEDED)")
    action, reason = run(wave, report("a"), report("b"), report("c"), report("d", "QUEUED"),
                         last=True)
    assert action == COMPLETE
    assert reason.startswith("3 stores succeeded and stayed healthy")
    assert "past the deadline, judged on 3 of 4 stores, the other 1 take it when they report" \
        in reason
    action, reason = run(wave, report("a"), report("b", "QUEUED"), report("c", "QUEUED"),
                         report("d", "QUEUED"))
    assert action == WAIT
    assert reason.startswith("past the wave's deadline with 1 of 4 stores succeeded, 2 needed")


def test_the_status_shows_what_evidence_the_wave_gave() -> None:
    executions = [report("a", ctr=(0.08, 0.07)), report("q", requests=2), report("c", "QUEUED")]
    assert wave_evidence(SPEC, "2.0", executions) == {
        "reported": 2, "health_evidence": 1, "quiet": 1,
        "click_through": "no click-through evidence (600/600 impressions before/after over "
                         "1 stores, 1000 needed a side)"}


@pytest.mark.parametrize(("kwargs", "words"), [
    ({"max_ctr_drop": 1.5}, "max_ctr_drop is a share"),
    ({"min_evidence_share": -0.1}, "min_evidence_share is a share"),
    ({"min_impressions": -1}, "min_impressions must not be negative"),
    ({"wave_deadline_s": -5}, "wave_deadline_s must not be negative")])
def test_bad_gate_settings_are_refused(kwargs: dict[str, Any], words: str) -> None:
    with pytest.raises(SpecError, match=words):
        RolloutSpec(**kwargs)


def test_a_release_recorded_before_the_gate_settings_gets_their_defaults() -> None:
    old = {k: v for k, v in RolloutSpec().to_dict().items()
           if k not in ("min_requests", "max_ctr_drop", "wave_deadline_s")}
    assert RolloutSpec.from_dict(old) == RolloutSpec()
