"""One step of the rollout analysis, as a pure function of what IoT Jobs reports.

Input: the rollout spec, the wave's stores, and their executions in the shape of
``describe_job_execution()["execution"]`` (status, ``statusDetails.detailsMap``,
``lastUpdatedAt``). Output: a :class:`Decision` (wait, promote, complete or abort) with its
reason in words, which the controller logs and records in ``release.json``."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cloud_sync.release.document import DocumentError, StatusDetails
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
    if details.error_rate is not None and details.error_rate > spec.max_error_rate:
        return (f"{store} error rate {details.error_rate:.4g} > {spec.max_error_rate:.4g}"
                f" over {details.requests if details.requests is not None else '?'} requests")
    if details.p99_ms is not None and details.p99_ms > spec.max_p99_ms:
        return f"{store} p99 {details.p99_ms:.4g} ms > {spec.max_p99_ms:.4g} ms"
    return None


def decide(spec: RolloutSpec, version: str, wave: Sequence[str],
           executions: Sequence[Mapping[str, Any]], now: datetime, *, last_wave: bool,
           job_status: str | None = None) -> Decision:
    """What to do with the current wave now (see the module docstring)."""
    by_store = {thing_of(str(e.get("thingArn", ""))): e for e in executions}
    statuses = Counter(str(by_store[s].get("status")) if s in by_store else "NOT_CREATED"
                       for s in wave)
    tally = ", ".join(f"{n} {status}" for status, n in sorted(statuses.items()))
    problems: list[str] = []
    successes: list[datetime] = []
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
            moment = _moment(execution.get("lastUpdatedAt"))
            successes.append(moment or now)
    if problems:
        return Decision(ABORT, "; ".join(problems) + f" (wave: {tally})")
    if job_status == "CANCELED":
        return Decision(ABORT, f"the wave's job was canceled outside the controller ({tally})")
    if len(successes) < len(wave):
        return Decision(WAIT, f"{len(successes)} of {len(wave)} stores succeeded ({tally})")
    soaked = (now - max(successes)).total_seconds()
    if soaked < spec.soak_s:
        # The same words every step of the soak, so a watch records the wait once.
        until = (max(successes) + timedelta(seconds=spec.soak_s)).astimezone(UTC)
        return Decision(WAIT, f"all {len(wave)} stores succeeded and healthy; soaking "
                              f"{spec.soak_s} s, until {until.isoformat(timespec='seconds')}")
    action = COMPLETE if last_wave else PROMOTE
    return Decision(action, f"all {len(wave)} stores succeeded and stayed healthy for "
                            f"{soaked:.0f} s (soak {spec.soak_s} s)")
