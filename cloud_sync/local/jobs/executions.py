"""The device's operations on its job executions (GetPending, StartNext, Describe, Update),
as IoT Jobs applies them, over moto's objects: boto3's describe_job_execution and
list_job_executions_for_job on moto then show what the devices did.

A device sees an execution only once the job's rollout has made it available. All reads and
writes of moto's job objects by the service hold `lock`."""

from __future__ import annotations

import threading
from typing import Any

from moto.core.utils import utcnow
from moto.iot.models import FakeJobExecution

from cloud_sync.local.jobs.documents import JobDocuments
from cloud_sync.local.jobs.lifecycle import SET_BY_SERVICE, TERMINAL, JobLifecycle, JobTrack
from cloud_sync.local.jobs.protocol import (
    NEXT_JOB_ID,
    ErrorCode,
    JobsApiError,
    optional_field,
    status_details_of,
)
from cloud_sync.local.jobs.views import execution_data, execution_state, execution_summary

# The statuses a device may report (UpdateJobExecution).
DEVICE_STATUSES = frozenset({"IN_PROGRESS", "SUCCEEDED", "FAILED", "REJECTED"})
Found = tuple[JobTrack, str, FakeJobExecution]


class ExecutionLedger:
    def __init__(self, lifecycle: JobLifecycle, documents: JobDocuments) -> None:
        self.lifecycle = lifecycle
        self.documents = documents
        self.lock = threading.RLock()

    def sweep(self) -> None:
        with self.lock:
            self.lifecycle.sweep()

    # ------------------------------------------------------------------------- lookups
    def _visible(self, thing: str) -> list[Found]:
        """The thing's executions its jobs' rollouts have made available, oldest first."""
        found = []
        for track in self.lifecycle.tracks.values():
            execution = self.lifecycle.backend.job_executions.get((track.job.job_id, thing))
            if execution is not None and thing in track.released:
                found.append((track, thing, execution))
        return sorted(found, key=lambda f: (f[2].queued_at, f[2].job_id))

    def _pending(self, thing: str) -> tuple[list[Found], list[Found]]:
        visible = self._visible(thing)
        return ([f for f in visible if f[2].status == "IN_PROGRESS"],
                [f for f in visible if f[2].status == "QUEUED"])

    def _next(self, thing: str) -> Found | None:
        in_progress, queued = self._pending(thing)
        return next(iter(in_progress + queued), None)

    def _find(self, thing: str, job_id: str, execution_number: int | None) -> Found:
        for found in self._visible(thing):
            if found[2].job_id == job_id and execution_number in (None,
                                                                  found[2].execution_number):
                return found
        raise JobsApiError(ErrorCode.RESOURCE_NOT_FOUND,
                           f"no execution of job {job_id} for thing {thing}"
                           + (f" numbered {execution_number}" if execution_number else ""))

    def _data(self, found: Found, include_document: bool = True) -> dict[str, Any]:
        track, thing, execution = found
        return execution_data(thing, track.job, execution, self.documents,
                              include_document=include_document)

    # --------------------------------------------------------------- what devices ask
    def pending_summaries(self, thing: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """(IN_PROGRESS, QUEUED) summaries: GetPendingJobExecutions and `jobs/notify`."""
        with self.lock:
            in_progress, queued = self._pending(thing)
            return ([execution_summary(f[2]) for f in in_progress],
                    [execution_summary(f[2]) for f in queued])

    def pending_signature(self, thing: str) -> tuple[frozenset[str], str | None]:
        """What notifications follow: the pending job ids (notify) and the next one's
        (notify-next)."""
        with self.lock:
            in_progress, queued = self._pending(thing)
            ids = [f[2].job_id for f in in_progress + queued]
            return frozenset(ids), (ids[0] if ids else None)

    def things(self) -> set[str]:
        with self.lock:
            return {thing for (_, thing) in list(self.lifecycle.backend.job_executions)}

    def next_execution(self, thing: str) -> dict[str, Any] | None:
        with self.lock:
            found = self._next(thing)
            return None if found is None else self._data(found)

    def describe(self, thing: str, job_id: str, request: dict[str, Any]
                 ) -> dict[str, Any] | None:
        number = optional_field(request, "executionNumber", int)
        include_document = optional_field(request, "includeJobDocument", bool)
        with self.lock:
            found = self._next(thing) if job_id == NEXT_JOB_ID else self._find(thing, job_id,
                                                                                number)
            if found is None:
                return None
            return self._data(found, include_document is not False)

    def start_next(self, thing: str, request: dict[str, Any]) -> dict[str, Any] | None:
        details = status_details_of(request)
        step_minutes = optional_field(request, "stepTimeoutInMinutes", int)
        with self.lock:
            found = self._next(thing)
            if found is None:
                return None
            track, _, execution = found
            self._apply(track, thing, execution, "IN_PROGRESS", details, step_minutes,
                        is_update=False)
            return self._data(found)

    def update(self, thing: str, job_id: str, request: dict[str, Any]) -> dict[str, Any]:
        """Apply an UpdateJobExecution; the accepted response's fields."""
        status = request.get("status")
        if status not in DEVICE_STATUSES:
            raise JobsApiError(ErrorCode.INVALID_REQUEST,
                               f"status must be one of {', '.join(sorted(DEVICE_STATUSES))}, "
                               f"not {status!r}")
        details = status_details_of(request)
        expected = optional_field(request, "expectedVersion", int)
        number = optional_field(request, "executionNumber", int)
        step_minutes = optional_field(request, "stepTimeoutInMinutes", int)
        include_state = optional_field(request, "includeJobExecutionState", bool)
        include_document = optional_field(request, "includeJobDocument", bool)
        with self.lock:
            track, _, execution = found = self._find(thing, job_id, number)
            if expected is not None and expected != execution.version_number:
                raise JobsApiError(ErrorCode.VERSION_MISMATCH,
                                   f"expected version {expected}, the execution is at "
                                   f"version {execution.version_number}",
                                   execution_state(execution))
            if execution.status in TERMINAL:
                code = (ErrorCode.TERMINAL_STATE_REACHED if execution.status in SET_BY_SERVICE
                        else ErrorCode.INVALID_STATE_TRANSITION)
                raise JobsApiError(code, f"the execution is {execution.status} already; it "
                                         f"cannot become {status}", execution_state(execution))
            self._apply(track, thing, execution, status, details, step_minutes,
                        is_update=True)
            self.lifecycle.settle(track, self.lifecycle.clock())
            fields: dict[str, Any] = {}
            if include_state:
                fields["executionState"] = execution_state(execution)
            if include_document:
                fields["jobDocument"] = self._data(found)["jobDocument"]
            return fields

    def _apply(self, track: JobTrack, thing: str, execution: FakeJobExecution, status: str,
               details: dict[str, str] | None, step_minutes: int | None, *,
               is_update: bool) -> None:
        """The status, statusDetails merged in, the timers, and one more version for every
        update (a StartNext that finds its execution IN_PROGRESS already and brings nothing
        new leaves it as it is)."""
        now = self.lifecycle.clock()
        changed = (is_update or status != execution.status or bool(details)
                   or step_minutes is not None)
        if execution.status == "QUEUED":
            execution.started_at = utcnow()
            self.lifecycle.start_timers(track, thing, now)
        if details:
            execution.status_details_map = {**execution.status_details_map, **details}
        if status in TERMINAL:
            self.lifecycle.clear_timers(track, thing)
        elif step_minutes is not None and step_minutes > 0:
            self.lifecycle.set_step_timer(track, thing, step_minutes, now)
        if changed:
            execution.status = status
            execution.version_number += 1
            execution.last_updated_at = utcnow()

