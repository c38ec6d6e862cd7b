"""One step of the rollout analysis, as a pure function of what IoT Jobs reports.

Input: the rollout spec, the wave's stores, and their executions in the shape of
``describe_job_execution()["execution"]`` (status, ``statusDetails.detailsMap``,
``lastUpdatedAt``). Output: a :class:`Decision` (wait, promote, complete or abort) with its
reason in words, which the controller logs and records in ``release.json``.

The rules (thresholds in :class:`~cloud_sync.release.spec.RolloutSpec`, why in
docs/releases.md): any failure, refusal, rollback or breach aborts; a store's error rate and
p99 are judged only over ``min_requests`` requests (fewer: a quiet store, counted as such),
and a wave needs health evidence from ``min_evidence_share`` of its stores; the wave's
click-through pooled after the swap more than ``max_ctr_drop`` below before aborts, judged
only with ``min_impressions`` a side; a wave waits for every store until
``wave_deadline_s``, then goes on with ``min_reported_share`` of them reported."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cloud_sync.release.document import DocumentError, StatusDetails
from cloud_sync.release.evidence import (
    gave_health_evidence,
    health_summary,
    pool_click_through,
)
from cloud_sync.release.spec import RolloutSpec
from cloud_sync.release.waves import thing_of

WAIT, PROMOTE, COMPLETE, ABORT = "wait", "promote", "complete", "abort"
# Terminal statuses other than success: each one stops the release. CANCELED and REMOVED
# mean someone (or IoT's own abort criteria) stopped the wave outside this controller.
FAILURE_STATUSES = frozenset({"FAILED", "TIMED_OUT", "REJECTED", "REMOVED", "CANCELED"})
BAD_STAGES = frozenset({"refused", "rolled-back"})


@dataclass(frozen=True)
class Decision:
    action: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _moment(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC)
    return None


def _health_problem(store: str, details: StatusDetails, spec: RolloutSpec) -> str | None:
    if details.stage in BAD_STAGES:
        return f"{store} {details.stage}: {details.reason or 'no reason given'}"
    if not gave_health_evidence(details, spec):
        return None  # a quiet store's numbers are noise; it is counted as quiet instead
    if details.error_rate is not None and details.error_rate > spec.max_error_rate:
        return (f"{store} error rate {details.error_rate:.4g} > {spec.max_error_rate:.4g}"
                f" over {details.requests} requests")
    if details.p99_ms is not None and details.p99_ms > spec.max_p99_ms:
        return f"{store} p99 {details.p99_ms:.4g} ms > {spec.max_p99_ms:.4g} ms"
    return None


def _evidence_words(reports: list[StatusDetails], spec: RolloutSpec) -> str:
    counted, quiet = health_summary(reports, spec)
    words = f"health evidence from {counted} of {len(reports)} stores"
    if quiet:
        words += f" ({quiet} quiet: < {spec.min_requests} requests)"
    return words


def decide(spec: RolloutSpec, version: str, wave: Sequence[str],
           executions: Sequence[Mapping[str, Any]], now: datetime, *, last_wave: bool,
           job_status: str | None = None, started: datetime | None = None) -> Decision:
    """What to do with the current wave now (see the module docstring). ``started`` is when
    the wave's job was created, for its deadline."""
    by_store = {thing_of(str(e.get("thingArn", ""))): e for e in executions}
    statuses = Counter(str(by_store[s].get("status")) if s in by_store else "NOT_CREATED"
                       for s in wave)
    tally = ", ".join(f"{n} {status}" for status, n in sorted(statuses.items()))
    problems: list[str] = []
    successes: list[datetime] = []
    reports: list[StatusDetails] = []  # of the stores that succeeded
    for store in wave:
        execution = by_store.get(store)
        if execution is None:
            continue
        status = str(execution.get("status"))
        if status in FAILURE_STATUSES:
            problems.append(f"{store} {status}")
        raw = (execution.get("statusDetails") or {}).get("detailsMap")
        details: StatusDetails | None = None
        if raw:
            try:
                details = StatusDetails.from_map(raw)
            except DocumentError as exc:
                problems.append(f"{store} sent unreadable status details ({exc})")
                continue
            problem = _health_problem(store, details, spec)
            if problem:
                problems.append(problem)
        if status == "SUCCEEDED":
            if details is None or details.error_rate is None or details.p99_ms is None:
                problems.append(f"{store} succeeded without reporting error_rate and p99_ms")
            elif details.version != version:
                problems.append(f"{store} succeeded but serves {details.version}")
            else:
                reports.append(details)
            moment = _moment(execution.get("lastUpdatedAt"))
            successes.append(moment or now)
    # Click-through is judged on whoever has reported so far: a collapse at the first
    # stores stops the wave without waiting for the rest.
    held, click_words = pool_click_through(reports).verdict(spec)
    if held:
        problems.append(click_words)
    if problems:
        return Decision(ABORT, "; ".join(problems) + f" (wave: {tally})")
    if job_status == "CANCELED":
        return Decision(ABORT, f"the wave's job was canceled outside the controller ({tally})")
    late = ""
    if len(successes) < len(wave):
        deadline = (started + timedelta(seconds=spec.wave_deadline_s)) if started else None
        needed = math.ceil(spec.min_reported_share * len(wave))
        if deadline is None or now < deadline:
            return Decision(WAIT, f"{len(successes)} of {len(wave)} stores succeeded ({tally})")
        if len(successes) < max(needed, 1):
            return Decision(WAIT, f"past the wave's deadline with {len(successes)} of "
                                  f"{len(wave)} stores succeeded, {needed} needed ({tally})")
        # The others keep their queued execution and take the release when they are back.
        late = (f"; past the deadline, judged on {len(successes)} of {len(wave)} stores, "
                f"the other {len(wave) - len(successes)} take it when they report")
    evidence = _evidence_words(reports, spec)
    counted, _ = health_summary(reports, spec)
    if counted < math.ceil(spec.min_evidence_share * len(reports)):
        return Decision(ABORT, f"too little health evidence: {evidence}, "
                               f"{spec.min_evidence_share:.0%} needed")
    summary = f"{evidence}; {click_words}{late}"
    stores = f"{'' if late else 'all '}{len(successes)} stores"
    soaked = (now - max(successes)).total_seconds()
    if soaked < spec.soak_s:
        # The same words every step of the soak, so a watch records the wait once.
        until = (max(successes) + timedelta(seconds=spec.soak_s)).astimezone(UTC)
        return Decision(WAIT, f"{stores} succeeded and healthy; soaking "
                              f"{spec.soak_s} s, until {until.isoformat(timespec='seconds')}"
                              f"; {summary}")
    action = COMPLETE if last_wave else PROMOTE
    return Decision(action, f"{stores} succeeded and stayed healthy for "
                            f"{soaked:.0f} s (soak {spec.soak_s} s); {summary}")


def wave_evidence(spec: RolloutSpec, version: str, executions: Sequence[Mapping[str, Any]]
                  ) -> dict[str, Any]:
    """What the wave's succeeded stores gave as evidence, for ``release status``."""
    reports = []
    for e in executions:
        raw = (e.get("statusDetails") or {}).get("detailsMap")
        if e.get("status") == "SUCCEEDED" and raw:
            try:
                details = StatusDetails.from_map(raw)
            except DocumentError:
                continue
            if details.version == version and details.error_rate is not None:
                reports.append(details)
    counted, quiet = health_summary(reports, spec)
    pooled = pool_click_through(reports)
    return {"reported": len(reports), "health_evidence": counted, "quiet": quiet,
            "click_through": pooled.verdict(spec)[1]}
