"""A release's rollout, as data: who gets it when, what health a store must show, and how
IoT Jobs paces and stops each wave (STYLE habit 15, as Flagger or Argo Rollouts describe a
canary). The spec is stored in ``release.json`` and evaluated by :mod:`.decide`."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

# Cumulative shares of the fleet after the canaries: 10 %, then half, then everyone.
DEFAULT_WAVES = (10, 50, 100)
# How long a wave must stay healthy after its last store succeeded before the next starts.
DEFAULT_SOAK_S = 1800
# How long a store serves the new bundle, watching itself, before it reports SUCCEEDED.
DEFAULT_PROBATION_S = 600
DEFAULT_MAX_ERROR_RATE = 0.01
DEFAULT_MAX_P99_MS = 250.0
# A store's error rate and p99 are evidence only over this many requests of its probation
# (one failure of three requests is not a 33 % error rate). The store's own probation uses
# the same bar (edge_agent/updates/health.py imports it), so a number the store would act on
# is one the controller judges and counts.
DEFAULT_MIN_REQUESTS = 20
# Share of a wave's stores that must give that evidence. 0: quiet stores (a night, a demo)
# pass, counted and named in every decision; production may ask for 0.5 (see releases.md).
DEFAULT_MIN_EVIDENCE_SHARE = 0.0
# Click-through: the wave is stopped when its pooled CTR after the swap is more than 30 %
# below before. 1,000 impressions a side puts a kiosk CTR near 10 % within about +-2
# points, so a 30 % fall is over two standard errors of the difference, not noise.
DEFAULT_MAX_CTR_DROP = 0.3
DEFAULT_MIN_IMPRESSIONS = 1000
# A wave waits this long for its stores; then it is judged on those that reported, if at
# least half did (a day: every store's opening hours come round once).
DEFAULT_WAVE_DEADLINE_S = 86400
DEFAULT_MIN_REPORTED_SHARE = 0.5
# IoT Jobs pacing: start 10 stores a minute, double after every 10 successes, at most 100 a
# minute, so a bad bundle meets few stores before the abort criteria trip.
BASE_RATE_PER_MINUTE = 10
INCREMENT_FACTOR = 2.0
INCREASE_AFTER_SUCCEEDED = 10
MAX_PER_MINUTE = 100
# IoT cancels a wave's job by itself once 10 % of at least one executed store failed, was
# rejected or timed out (the controller also aborts on the first; this covers its absence).
ABORT_FAILURE_TYPES = ("FAILED", "REJECTED", "TIMED_OUT")
ABORT_THRESHOLD_PERCENT = 10.0
ABORT_MIN_EXECUTED = 1
# A store's download and verification on a slow shop line, on top of its probation.
DOWNLOAD_ALLOWANCE_MIN = 30
MAX_IN_PROGRESS_MINUTES = 10080  # IoT Jobs' limit: 7 days
# A presigned URL lives at most an hour (IoT Jobs' limit); a store downloads at once.
PRESIGNED_EXPIRES_S = 3600


class SpecError(ValueError):
    """The rollout spec is inconsistent; the message names the setting."""


@dataclass(frozen=True)
class RolloutSpec:
    canaries: tuple[str, ...] = ()
    waves: tuple[int, ...] = DEFAULT_WAVES
    soak_s: int = DEFAULT_SOAK_S
    probation_s: int = DEFAULT_PROBATION_S
    max_error_rate: float = DEFAULT_MAX_ERROR_RATE
    max_p99_ms: float = DEFAULT_MAX_P99_MS
    min_requests: int = DEFAULT_MIN_REQUESTS
    min_evidence_share: float = DEFAULT_MIN_EVIDENCE_SHARE
    max_ctr_drop: float = DEFAULT_MAX_CTR_DROP
    min_impressions: int = DEFAULT_MIN_IMPRESSIONS
    wave_deadline_s: int = DEFAULT_WAVE_DEADLINE_S
    min_reported_share: float = DEFAULT_MIN_REPORTED_SHARE
    job: dict[str, Any] = field(default_factory=dict)  # filled in by __post_init__

    def __post_init__(self) -> None:
        object.__setattr__(self, "canaries", tuple(self.canaries))
        object.__setattr__(self, "waves", tuple(int(w) for w in self.waves))
        if len(set(self.canaries)) != len(self.canaries):
            raise SpecError("--canary names a store twice")
        if not self.waves or self.waves[-1] != 100:
            raise SpecError(f"waves are cumulative percentages ending at 100, got {self.waves}")
        if any(not 0 < w <= 100 for w in self.waves) or list(self.waves) != sorted(
                set(self.waves)):
            raise SpecError(f"waves must grow strictly within 1..100, got {self.waves}")
        for name in ("soak_s", "probation_s", "min_requests", "min_impressions",
                     "wave_deadline_s"):
            if getattr(self, name) < 0:
                raise SpecError(f"{name} must not be negative")
        for name in ("max_error_rate", "min_evidence_share", "max_ctr_drop",
                     "min_reported_share"):
            if not 0 <= getattr(self, name) <= 1:
                raise SpecError(f"{name} is a share 0..1, got {getattr(self, name)}")
        if self.max_p99_ms <= 0:
            raise SpecError(f"max_p99_ms must be positive, got {self.max_p99_ms}")
        timeout = math.ceil(self.probation_s / 60) + DOWNLOAD_ALLOWANCE_MIN
        if timeout > MAX_IN_PROGRESS_MINUTES:
            raise SpecError(f"probation_s {self.probation_s} exceeds IoT Jobs' 7-day limit")
        if not self.job:
            object.__setattr__(self, "job", {
                "jobExecutionsRolloutConfig": {
                    "maximumPerMinute": MAX_PER_MINUTE,
                    "exponentialRate": {
                        "baseRatePerMinute": BASE_RATE_PER_MINUTE,
                        "incrementFactor": INCREMENT_FACTOR,
                        "rateIncreaseCriteria": {
                            "numberOfSucceededThings": INCREASE_AFTER_SUCCEEDED},
                    },
                },
                "abortConfig": {"criteriaList": [
                    {"failureType": kind, "action": "CANCEL",
                     "thresholdPercentage": ABORT_THRESHOLD_PERCENT,
                     "minNumberOfExecutedThings": ABORT_MIN_EXECUTED}
                    for kind in ABORT_FAILURE_TYPES]},
                "timeoutConfig": {"inProgressTimeoutInMinutes": timeout},
                "presignedExpiresInSec": PRESIGNED_EXPIRES_S,
            })

    def create_job_arguments(self, role_arn: str) -> dict[str, Any]:
        """The pacing, abort, timeout and presigning arguments of ``iot.create_job``."""
        return {
            "jobExecutionsRolloutConfig": self.job["jobExecutionsRolloutConfig"],
            "abortConfig": self.job["abortConfig"],
            "timeoutConfig": self.job["timeoutConfig"],
            "presignedUrlConfig": {"roleArn": role_arn,
                                   "expiresInSec": int(self.job["presignedExpiresInSec"])},
        }

    def to_dict(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["canaries"], doc["waves"] = list(self.canaries), list(self.waves)
        return doc

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> RolloutSpec:
        # A release recorded before a setting existed gets its default.
        return cls(**doc)
