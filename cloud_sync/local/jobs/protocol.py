"""The IoT Jobs device MQTT API as AWS documents it (jobs-mqtt-api.html): request topics,
request validation, and the JSON documents of accepted/rejected responses and notifications.
Timestamps are epoch seconds, as IoT Jobs sends them (the SDK reads them with
`datetime.fromtimestamp`)."""

from __future__ import annotations

import calendar
import datetime as dt
import json
import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from cloud_sync.topics import jobs_prefix

# Every request topic of every thing; the service subscribes to this one filter.
JOBS_TOPIC_FILTER = jobs_prefix("+") + "#"
NEXT_JOB_ID = "$next"  # DescribeJobExecution of the next pending execution
# IoT Jobs' own limits, enforced here too so a device that breaks them fails locally first.
MAX_CLIENT_TOKEN_LENGTH = 64
MAX_STATUS_DETAIL_VALUE_LENGTH = 1024
RESPONSE_SUFFIXES = ("/accepted", "/rejected")
NOTIFICATION_TOPICS = ("notify", "notify-next")


class Operation(StrEnum):
    GET_PENDING = "GetPendingJobExecutions"
    START_NEXT = "StartNextPendingJobExecution"
    DESCRIBE = "DescribeJobExecution"
    UPDATE = "UpdateJobExecution"


class ErrorCode(StrEnum):
    """The `code` of a rejected response."""

    INVALID_TOPIC = "InvalidTopic"
    INVALID_JSON = "InvalidJson"
    INVALID_REQUEST = "InvalidRequest"
    INVALID_STATE_TRANSITION = "InvalidStateTransition"
    RESOURCE_NOT_FOUND = "ResourceNotFound"
    VERSION_MISMATCH = "VersionMismatch"
    INTERNAL_ERROR = "InternalError"
    REQUEST_THROTTLED = "RequestThrottled"
    TERMINAL_STATE_REACHED = "TerminalStateReached"


class JobsApiError(Exception):
    """A request the Jobs API rejects; `execution_state` for InvalidStateTransition and
    VersionMismatch, as IoT Jobs sends it."""

    def __init__(self, code: ErrorCode, message: str,
                 execution_state: dict[str, Any] | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.execution_state = execution_state


@dataclass(frozen=True)
class RequestTopic:
    """A request topic taken apart: whose, which operation, which job (DESCRIBE, UPDATE)."""

    topic: str
    thing: str
    operation: Operation
    job_id: str | None = None

    @property
    def accepted(self) -> str:
        return self.topic + "/accepted"

    @property
    def rejected(self) -> str:
        return self.topic + "/rejected"


def parse_topic(topic: str) -> RequestTopic | None:
    """The request a topic names; None for topics the service itself publishes (responses,
    notifications). Raises InvalidTopic for anything else under `$aws/things/+/jobs/`."""
    parts = topic.split("/")
    if len(parts) < 5 or parts[:2] != ["$aws", "things"] or parts[3] != "jobs" or not parts[2]:
        raise JobsApiError(ErrorCode.INVALID_TOPIC, f"{topic} is not a Jobs topic")
    thing, rest = parts[2], parts[4:]
    if topic.endswith(RESPONSE_SUFFIXES) or (len(rest) == 1 and rest[0] in NOTIFICATION_TOPICS):
        return None
    if rest == ["get"]:
        return RequestTopic(topic, thing, Operation.GET_PENDING)
    if rest == ["start-next"]:
        return RequestTopic(topic, thing, Operation.START_NEXT)
    if len(rest) == 2 and rest[0] and rest[1] == "get":
        return RequestTopic(topic, thing, Operation.DESCRIBE, rest[0])
    if len(rest) == 2 and rest[0] and rest[1] == "update":
        return RequestTopic(topic, thing, Operation.UPDATE, rest[0])
    raise JobsApiError(ErrorCode.INVALID_TOPIC,
                       f"{topic} does not map to any Jobs API operation")


def parse_payload(payload: bytes) -> dict[str, Any]:
    """A request body: a JSON object (an empty payload counts as `{}`)."""
    if not payload.strip():
        return {}
    try:
        document = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise JobsApiError(ErrorCode.INVALID_JSON,
                           f"the request is not valid UTF-8 JSON: {exc}") from None
    if not isinstance(document, dict):
        raise JobsApiError(ErrorCode.INVALID_JSON, "the request must be a JSON object")
    return document


def client_token_of(request: dict[str, Any]) -> str | None:
    token = request.get("clientToken")
    if token is None:
        return None
    if not isinstance(token, str) or not 0 < len(token) <= MAX_CLIENT_TOKEN_LENGTH:
        raise JobsApiError(ErrorCode.INVALID_REQUEST,
                           f"clientToken must be a string of 1 to {MAX_CLIENT_TOKEN_LENGTH} "
                           f"characters")
    return token


def optional_field(request: dict[str, Any], name: str, kind: type) -> Any:
    """`request[name]` if present and of `kind` (bool is not an int here), else None."""
    value = request.get(name)
    if value is None:
        return None
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise JobsApiError(ErrorCode.INVALID_REQUEST, f"{name} must be a {kind.__name__}")
    return value


def status_details_of(request: dict[str, Any]) -> dict[str, str] | None:
    """statusDetails: a string-to-string map (IoT Jobs refuses anything else)."""
    details = request.get("statusDetails")
    if details is None:
        return None
    if not isinstance(details, dict) or not all(
            isinstance(k, str) and k and isinstance(v, str) and v
            and len(v) <= MAX_STATUS_DETAIL_VALUE_LENGTH for k, v in details.items()):
        raise JobsApiError(ErrorCode.INVALID_REQUEST,
                           "statusDetails must map non-empty strings to non-empty strings "
                           f"of at most {MAX_STATUS_DETAIL_VALUE_LENGTH} characters")
    return dict(details)


def epoch_seconds(moment: dt.datetime | None) -> int | None:
    """moto keeps naive UTC datetimes; IoT Jobs sends whole epoch seconds."""
    if moment is None:
        return None
    return calendar.timegm(moment.utctimetuple())


def now_seconds() -> int:
    return int(time.time())


def without_none(document: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in document.items() if v is not None}


def response(client_token: str | None, **fields: Any) -> dict[str, Any]:
    """An accepted response: the fields, a timestamp and the request's clientToken echoed."""
    return without_none({**fields, "timestamp": now_seconds(), "clientToken": client_token})


def rejection(error: JobsApiError, client_token: str | None) -> dict[str, Any]:
    return without_none({"code": str(error.code), "message": error.message,
                         "clientToken": client_token, "timestamp": now_seconds(),
                         "executionState": error.execution_state})


def notify_document(in_progress: list[dict[str, Any]],
                    queued: list[dict[str, Any]]) -> dict[str, Any]:
    """JobExecutionsChanged: the pending executions by status (empty `jobs` when none)."""
    jobs: dict[str, list[dict[str, Any]]] = {}
    if queued:
        jobs["QUEUED"] = queued
    if in_progress:
        jobs["IN_PROGRESS"] = in_progress
    return {"timestamp": now_seconds(), "jobs": jobs}


def notify_next_document(execution: dict[str, Any] | None) -> dict[str, Any]:
    """NextJobExecutionChanged: the next execution, or no `execution` when none is pending."""
    return without_none({"timestamp": now_seconds(), "execution": execution})
