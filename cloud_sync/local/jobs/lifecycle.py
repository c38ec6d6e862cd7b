"""What happens to a job and its executions without a device asking: adoption of a job moto
just created, its rollout, cancellation (`cancel_job` through boto3 only flips the job's
status in moto), timeouts, abort criteria, completion and the job's counts.

Everything here mutates moto's objects and runs under the ledger's lock."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from moto.core.utils import utcnow
from moto.iot.models import FakeJob, FakeJobExecution

from cloud_sync.local.jobs.rollout import RolloutPacer, abort_decision

logger = logging.getLogger(__name__)

TERMINAL = frozenset({"SUCCEEDED", "FAILED", "REJECTED", "TIMED_OUT", "CANCELED", "REMOVED"})
# Terminal statuses only the service sets (a device cannot).
SET_BY_SERVICE = frozenset({"TIMED_OUT", "CANCELED", "REMOVED"})
PROCESS_COUNTERS = {
    "QUEUED": "numberOfQueuedThings", "IN_PROGRESS": "numberOfInProgressThings",
    "SUCCEEDED": "numberOfSucceededThings", "FAILED": "numberOfFailedThings",
    "REJECTED": "numberOfRejectedThings", "CANCELED": "numberOfCanceledThings",
    "REMOVED": "numberOfRemovedThings", "TIMED_OUT": "numberOfTimedOutThings",
}
# reasonCode of a job canceled by its abortConfig (IoT Jobs leaves its own wording undocumented).
ABORT_REASON_CODE = "ABORT_CRITERIA_MET"
# moto gives every execution these placeholder numbers; IoT Jobs starts both at 1.
FIRST_NUMBER = 1
THING_GROUP_ARN_MARK = ":thinggroup/"


@dataclass
class JobTrack:
    """What the service knows of a job beyond moto's record."""

    job: FakeJob
    pacer: RolloutPacer
    released: dict[str, float] = field(default_factory=dict)  # thing -> when made available
    cancel_applied: bool = False
    in_progress_deadline: dict[str, float] = field(default_factory=dict)
    step_deadline: dict[str, float] = field(default_factory=dict)


def set_status(execution: FakeJobExecution, status: str) -> None:
    execution.status = status
    execution.version_number += 1
    execution.last_updated_at = utcnow()


class JobLifecycle:
    def __init__(self, backend_of: Callable[[], Any], seconds_per_minute: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._backend_of = backend_of
        self.seconds_per_minute = seconds_per_minute
        self.clock = clock
        self.tracks: dict[str, JobTrack] = {}

    @property
    def backend(self) -> Any:
        """moto's IoTBackend for our account and region, looked up each time: a reset of
        moto (`/moto-api/reset`) replaces it."""
        return self._backend_of()

    def minutes(self, count: float) -> float:
        return count * self.seconds_per_minute

    def executions_of(self, job_id: str) -> list[tuple[str, FakeJobExecution]]:
        """(thing, execution) of a job, in moto's order (the order of the targets)."""
        return [(thing, ex) for (jid, thing), ex in list(self.backend.job_executions.items())
                if jid == job_id]

    # ----------------------------------------------------------------------- the poll
    def sweep(self) -> None:
        now = self.clock()
        jobs = dict(self.backend.jobs)
        for job_id, track in list(self.tracks.items()):
            if jobs.get(job_id) is not track.job:  # deleted (or moto reset): forget it
                del self.tracks[job_id]
        for job_id, job in jobs.items():
            track = self.tracks.get(job_id) or self._adopt(job)
            self.settle(track, now)

    def _adopt(self, job: FakeJob) -> JobTrack:
        self._expand_thing_groups(job)
        if job.status == "QUEUED":
            job.status = "IN_PROGRESS"  # what IoT Jobs calls a job that was just created
        for _, execution in self.executions_of(job.job_id):
            execution.execution_number = execution.version_number = FIRST_NUMBER
            execution.started_at = None  # moto sets it at creation; a QUEUED one has not
            execution.approximate_seconds_before_time_out = None  # moto's placeholder (123)
            execution.last_updated_at = execution.queued_at
        track = JobTrack(job, RolloutPacer.from_config(job.job_executions_rollout_config,
                                                       self.seconds_per_minute))
        self.tracks[job.job_id] = track
        logger.info("job %s adopted: %d executions", job.job_id,
                    len(self.executions_of(job.job_id)))
        return track

    def _expand_thing_groups(self, job: FakeJob) -> None:
        """moto files a thing group target as one execution named after the group; IoT Jobs
        runs one per member thing."""
        for target in job.targets or []:
            if THING_GROUP_ARN_MARK not in target:
                continue
            group = target.rsplit("/", 1)[-1]
            self.backend.job_executions.pop((job.job_id, group), None)
            for thing in self.backend.list_things_in_thing_group(group):
                key = (job.job_id, thing.thing_name)
                if key not in self.backend.job_executions:
                    self.backend.job_executions[key] = FakeJobExecution(job.job_id, thing.arn)

    def settle(self, track: JobTrack, now: float) -> None:
        """Bring one job up to date: cancel, release, time out, abort, complete, count."""
        job = track.job
        executions = self.executions_of(job.job_id)
        if job.status == "CANCELED" and not track.cancel_applied:
            self._cancel(track, executions, force=bool(job.force))
        if job.status == "IN_PROGRESS":
            self._release(track, executions, now)
        self._time_out(track, executions, now)
        if job.status == "IN_PROGRESS":
            self._abort_if_met(track, executions)
        if (job.status == "IN_PROGRESS" and executions
                and all(ex.status in TERMINAL for _, ex in executions)):
            job.status = "COMPLETED"
            job.completed_at = job.last_updated_at = utcnow()
            logger.info("job %s completed", job.job_id)
        self._count(job, executions)

    def _cancel(self, track: JobTrack, executions: list[tuple[str, FakeJobExecution]],
                *, force: bool) -> None:
        track.cancel_applied = True
        for _, ex in executions:
            if ex.status == "QUEUED" or (force and ex.status == "IN_PROGRESS"):
                set_status(ex, "CANCELED")
        logger.info("job %s canceled (force: %s)", track.job.job_id, force)

    def _release(self, track: JobTrack, executions: list[tuple[str, FakeJobExecution]],
                 now: float) -> None:
        waiting = [thing for thing, ex in executions
                   if thing not in track.released and ex.status == "QUEUED"]
        if not waiting:
            return
        succeeded = sum(1 for _, ex in executions if ex.status == "SUCCEEDED")
        allowance = track.pacer.releasable(now, succeeded)
        for thing in waiting if allowance is None else waiting[:allowance]:
            track.released[thing] = now
            track.pacer.released(now)

    def _time_out(self, track: JobTrack, executions: list[tuple[str, FakeJobExecution]],
                  now: float) -> None:
        for thing, ex in executions:
            deadlines = [d for d in (track.in_progress_deadline.get(thing),
                                     track.step_deadline.get(thing)) if d is not None]
            if ex.status == "IN_PROGRESS" and deadlines and now >= min(deadlines):
                set_status(ex, "TIMED_OUT")
                self.clear_timers(track, thing)
                logger.info("job %s on %s timed out", track.job.job_id, thing)

    def _abort_if_met(self, track: JobTrack,
                      executions: list[tuple[str, FakeJobExecution]]) -> None:
        criteria = (track.job.abort_config or {}).get("criteriaList") or []
        statuses = [ex.status for thing, ex in executions if thing in track.released]
        decision = abort_decision(criteria, len(track.released), statuses)
        if decision is None:
            return
        job = track.job
        job.status, job.reason_code, job.comment = "CANCELED", ABORT_REASON_CODE, decision.comment
        job.last_updated_at = utcnow()
        logger.info("job %s %s", job.job_id, decision.comment)
        self._cancel(track, executions, force=False)

    @staticmethod
    def _count(job: FakeJob, executions: list[tuple[str, FakeJobExecution]]) -> None:
        counts = dict.fromkeys(PROCESS_COUNTERS.values(), 0)
        for _, ex in executions:
            if ex.status in PROCESS_COUNTERS:
                counts[PROCESS_COUNTERS[ex.status]] += 1
        job.job_process_details = {**(job.job_process_details or {}), **counts}

    # --------------------------------------------------------------- timers of a device
    def start_timers(self, track: JobTrack, thing: str, now: float) -> None:
        """The job's inProgressTimeoutInMinutes runs from the move to IN_PROGRESS."""
        minutes = (track.job.timeout_config or {}).get("inProgressTimeoutInMinutes")
        if minutes:
            track.in_progress_deadline[thing] = now + self.minutes(float(minutes))

    def set_step_timer(self, track: JobTrack, thing: str, minutes: int, now: float) -> None:
        track.step_deadline[thing] = now + self.minutes(minutes)

    @staticmethod
    def clear_timers(track: JobTrack, thing: str) -> None:
        track.in_progress_deadline.pop(thing, None)
        track.step_deadline.pop(thing, None)
