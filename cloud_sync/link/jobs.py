"""A store's side of AWS IoT Jobs: a small typed wrapper over the SDK's `IotJobsClientV2` on
the store's one MQTT 5 connection (a `LinkClient`, shared with the uplink). The same code runs
against IoT Jobs and the local stand-in (`cloud_sync.local.jobs`).

Every request has a timeout; a rejection raises `JobRejected` with IoT Jobs' error code."""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Any, TypeVar

from awscrt import mqtt_request_response
from awsiot import ServiceStreamOptions, V2ServiceException, iotjobs

from cloud_sync.link.mqtt import LinkClient

logger = logging.getLogger(__name__)

REQUEST_TIMEOUT_S = 10
# A store has one request in flight at a time, and one notification stream: a few
# subscriptions suffice (the SDK needs at least two for requests).
MAX_REQUEST_SUBSCRIPTIONS = 4
MAX_STREAM_SUBSCRIPTIONS = 2
T = TypeVar("T")


class JobsError(RuntimeError):
    """A Jobs request did not complete: no answer in time, or the link failed."""


class JobRejected(JobsError):
    """IoT Jobs rejected a request; `code` is its error code (VersionMismatch,
    InvalidStateTransition, ResourceNotFound, ...), `state` the execution's when it says."""

    def __init__(self, operation: str, code: str, message: str,
                 state: JobExecutionState | None) -> None:
        super().__init__(f"{operation} rejected: {code}: {message}")
        self.code = code
        self.state = state


@dataclass(frozen=True)
class JobExecutionState:
    status: str
    version_number: int
    status_details: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, state: Any) -> JobExecutionState:
        return cls(state.status, state.version_number or 0, dict(state.status_details or {}))


@dataclass(frozen=True)
class JobExecution:
    """One job's execution on this store, as IoT Jobs reports it."""

    job_id: str
    status: str
    version_number: int
    execution_number: int | None
    document: Any  # the job document (a JSON object), None when not asked for
    status_details: dict[str, str] = field(default_factory=dict)
    queued_at: dt.datetime | None = None
    started_at: dt.datetime | None = None
    last_updated_at: dt.datetime | None = None

    @classmethod
    def of(cls, data: iotjobs.JobExecutionData) -> JobExecution:
        return cls(job_id=data.job_id, status=data.status,
                   version_number=data.version_number or 0,
                   execution_number=data.execution_number, document=data.job_document,
                   status_details=dict(data.status_details or {}), queued_at=data.queued_at,
                   started_at=data.started_at, last_updated_at=data.last_updated_at)


class JobsClient:
    """The Jobs operations of one thing (the store) over an open `LinkClient`."""

    def __init__(self, link: LinkClient, thing_name: str | None = None,
                 timeout_s: int = REQUEST_TIMEOUT_S) -> None:
        if link.client is None:
            raise JobsError("the link has no MQTT client")
        self.thing_name = thing_name or link.credentials.thing_name
        self.timeout_s = timeout_s
        self._client = iotjobs.IotJobsClientV2(link.client, mqtt_request_response.ClientOptions(
            max_request_response_subscriptions=MAX_REQUEST_SUBSCRIPTIONS,
            max_streaming_subscriptions=MAX_STREAM_SUBSCRIPTIONS,
            operation_timeout_in_seconds=timeout_s))
        self._streams: list[Any] = []

    def on_next_execution(self, callback: Callable[[JobExecution | None], None], *,
                          wait: bool = True) -> None:
        """Call `callback` with the next pending execution (or None: nothing pending) each
        time it changes (`notify-next`). Returns once subscribed, or at once with
        `wait=False` (a store starting offline: the SDK subscribes when the link is up, and
        again after each reconnect). The callback runs on the SDK's thread: what it raises is
        logged, never propagated."""
        subscribed = threading.Event()

        def status(event: mqtt_request_response.SubscriptionStatusEvent) -> None:
            if event.type == mqtt_request_response.SubscriptionStatusEventType.\
                    SUBSCRIPTION_ESTABLISHED:
                subscribed.set()
            else:
                logger.warning("%s: jobs notifications: %s (%s)", self.thing_name,
                               event.type.name, event.error)

        def incoming(event: iotjobs.NextJobExecutionChangedEvent) -> None:
            try:
                callback(None if event.execution is None else JobExecution.of(event.execution))
            except Exception:
                logger.exception("%s: the next-job callback failed", self.thing_name)

        stream = self._client.create_next_job_execution_changed_stream(
            iotjobs.NextJobExecutionChangedSubscriptionRequest(thing_name=self.thing_name),
            ServiceStreamOptions(incoming_event_listener=incoming,
                                 subscription_status_listener=status))
        stream.open()
        self._streams.append(stream)  # kept: the stream ends when collected
        if wait and not subscribed.wait(self.timeout_s):
            raise JobsError(f"{self.thing_name}: no subscription to jobs/notify-next within "
                            f"{self.timeout_s}s")

    def start_next(self, status_details: dict[str, str] | None = None,
                   step_timeout_minutes: int | None = None) -> JobExecution | None:
        """Start the next pending execution (IN_PROGRESS) and return it with its document;
        None when nothing is pending."""
        response = self._wait("start-next", self._client.start_next_pending_job_execution(
            iotjobs.StartNextPendingJobExecutionRequest(
                thing_name=self.thing_name, status_details=status_details,
                step_timeout_in_minutes=step_timeout_minutes)))
        return None if response.execution is None else JobExecution.of(response.execution)

    def update(self, job_id: str, status: str, status_details: dict[str, str] | None = None,
               expected_version: int | None = None,
               step_timeout_minutes: int | None = None) -> JobExecutionState:
        """Report IN_PROGRESS, SUCCEEDED, FAILED or REJECTED; returns the new state. Raises
        `JobRejected` (VersionMismatch, InvalidStateTransition, ...) on refusal."""
        response = self._wait("update", self._client.update_job_execution(
            iotjobs.UpdateJobExecutionRequest(
                thing_name=self.thing_name, job_id=job_id, status=status,
                status_details=status_details, expected_version=expected_version,
                step_timeout_in_minutes=step_timeout_minutes,
                include_job_execution_state=True)))
        return JobExecutionState.of(response.execution_state)

    def describe(self, job_id: str = "$next", include_document: bool = True
                 ) -> JobExecution | None:
        """One execution (`$next`: the next pending one, None when there is none)."""
        response = self._wait("describe", self._client.describe_job_execution(
            iotjobs.DescribeJobExecutionRequest(thing_name=self.thing_name, job_id=job_id,
                                                include_job_document=include_document)))
        return None if response.execution is None else JobExecution.of(response.execution)

    def pending(self) -> tuple[list[str], list[str]]:
        """(IN_PROGRESS, QUEUED) job ids, oldest first."""
        response = self._wait("get-pending", self._client.get_pending_job_executions(
            iotjobs.GetPendingJobExecutionsRequest(thing_name=self.thing_name)))
        return ([s.job_id for s in response.in_progress_jobs or []],
                [s.job_id for s in response.queued_jobs or []])

    def close(self) -> None:
        """Stop the notification streams (awscrt ends a stream when it is released)."""
        self._streams.clear()

    def _wait(self, operation: str, future: Future[T]) -> T:
        try:
            # A second beyond the SDK's own operation timeout, which then answers first.
            return future.result(self.timeout_s + 1)
        except FutureTimeout:
            raise JobsError(f"{self.thing_name}: {operation}: no answer within "
                            f"{self.timeout_s}s") from None
        except V2ServiceException as exc:
            error = exc.modeled_error
            if error is not None:
                state = (JobExecutionState.of(error.execution_state)
                         if error.execution_state is not None else None)
                raise JobRejected(operation, error.code or "?", error.message or "",
                                  state) from None
            raise JobsError(f"{self.thing_name}: {operation} failed: "
                            f"{exc.inner_error or exc.message}") from exc
