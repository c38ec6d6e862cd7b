"""How fast a job's executions are made available (`jobExecutionsRolloutConfig`) and when a
job is aborted (`abortConfig`), as pure rules over counts and times; `executions` applies them.

A "minute" is `seconds_per_minute` seconds: 60 except in tests, which shrink it to watch a
rollout or a timeout in seconds (local only: IoT Jobs has no such knob)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

# IoT Jobs' failure types and the execution statuses each one counts.
FAILURE_STATUSES: dict[str, frozenset[str]] = {
    "FAILED": frozenset({"FAILED"}),
    "REJECTED": frozenset({"REJECTED"}),
    "TIMED_OUT": frozenset({"TIMED_OUT"}),
    "ALL": frozenset({"FAILED", "REJECTED", "TIMED_OUT"}),
}
ABORT_ACTION_CANCEL = "CANCEL"


@dataclass
class RolloutPacer:
    """At most `rate` executions made available in any window of one minute. With an
    exponential rate, the rate starts at `baseRatePerMinute` and is multiplied by
    `incrementFactor` each time the criteria (things notified, or succeeded, since the last
    increase) are met, up to `maximumPerMinute`. No config: everything at once."""

    seconds_per_minute: float
    maximum_per_minute: int | None = None
    rate: float | None = None
    increment_factor: float = 1.0
    notified_per_step: int | None = None
    succeeded_per_step: int | None = None
    release_times: list[float] = field(default_factory=list)
    _step_start_notified: int = 0
    _step_start_succeeded: int = 0

    @classmethod
    def from_config(cls, config: Mapping[str, Any] | None,
                    seconds_per_minute: float) -> RolloutPacer:
        config = config or {}
        pacer = cls(seconds_per_minute, maximum_per_minute=config.get("maximumPerMinute"))
        exponential = config.get("exponentialRate")
        if exponential:
            criteria = exponential.get("rateIncreaseCriteria") or {}
            pacer.rate = float(exponential["baseRatePerMinute"])
            pacer.increment_factor = float(exponential.get("incrementFactor", 1.0))
            pacer.notified_per_step = criteria.get("numberOfNotifiedThings")
            pacer.succeeded_per_step = criteria.get("numberOfSucceededThings")
        elif pacer.maximum_per_minute is not None:
            pacer.rate = float(pacer.maximum_per_minute)
        return pacer

    def _raise_rate(self, succeeded: int) -> None:
        if self.rate is None or self.increment_factor <= 1.0:
            return
        notified = len(self.release_times)
        met = ((self.notified_per_step is not None
                and notified - self._step_start_notified >= self.notified_per_step)
               or (self.succeeded_per_step is not None
                   and succeeded - self._step_start_succeeded >= self.succeeded_per_step))
        if met:
            self.rate *= self.increment_factor
            if self.maximum_per_minute is not None:
                self.rate = min(self.rate, float(self.maximum_per_minute))
            self._step_start_notified, self._step_start_succeeded = notified, succeeded

    def releasable(self, now: float, succeeded: int) -> int | None:
        """How many more executions may be made available at `now` (monotonic seconds);
        None: no limit."""
        if self.rate is None:
            return None
        self._raise_rate(succeeded)
        window_start = now - self.seconds_per_minute
        recent = sum(1 for t in self.release_times if t > window_start)
        return max(0, max(1, math.floor(self.rate)) - recent)

    def released(self, now: float) -> None:
        self.release_times.append(now)


@dataclass(frozen=True)
class AbortDecision:
    failure_type: str
    failures: int
    notified: int
    percentage: float
    threshold: float

    @property
    def comment(self) -> str:
        return (f"aborted by abortConfig: {self.failures} of {self.notified} things notified "
                f"ended {self.failure_type} ({self.percentage:.2f}% >= {self.threshold}%)")


def abort_decision(criteria: Sequence[Mapping[str, Any]], notified: int,
                   statuses: Sequence[str]) -> AbortDecision | None:
    """The first criterion met: at least `minNumberOfExecutedThings` things notified, and the
    failures of its type at least `thresholdPercentage` of the things notified."""
    for criterion in criteria:
        if criterion.get("action", ABORT_ACTION_CANCEL) != ABORT_ACTION_CANCEL:
            continue
        failure_type = str(criterion.get("failureType", "ALL"))
        counted = FAILURE_STATUSES.get(failure_type, FAILURE_STATUSES["ALL"])
        minimum = int(criterion.get("minNumberOfExecutedThings", 1))
        if notified == 0 or notified < minimum:
            continue
        failures = sum(1 for status in statuses if status in counted)
        percentage = 100.0 * failures / notified
        threshold = float(criterion.get("thresholdPercentage", 100.0))
        if failures and percentage >= threshold:
            return AbortDecision(failure_type, failures, notified, percentage, threshold)
    return None
