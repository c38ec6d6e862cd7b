"""The release's IoT Jobs calls through boto3: one job per wave, one per rollback.

Job ids are derived from the release id and the wave, so creating a wave's job twice (two
controllers, or a retry after a crash between ``create_job`` and saving the record) finds
the job already there instead of sending the bundle twice (idempotency by key)."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import Any

from botocore.exceptions import ClientError

from cloud_sync.release.document import JobDocument
from cloud_sync.release.spec import MAX_PER_MINUTE, RolloutSpec
from cloud_sync.release.waves import thing_arns, thing_of

logger = logging.getLogger(__name__)

MAX_JOB_ID = 64  # IoT Jobs: [a-zA-Z0-9_-]{1,64}
ABORT_REASON_CODE = "RELEASE_ABORTED"  # cancel_job reasonCode: [A-Z0-9_]+
MAX_COMMENT = 2028  # cancel_job comment limit
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


def release_id_for(version: str, sha256: str) -> str:
    """A release id: the version in job-id characters and the bundle digest's first 8."""
    return f"{_UNSAFE.sub('_', version)[:40]}-{sha256[:8]}"


def job_id(release_id: str, suffix: str) -> str:
    job = f"instore-{release_id}-{suffix}"
    if len(job) > MAX_JOB_ID or _UNSAFE.search(job):
        raise ValueError(f"job id {job!r} breaks IoT's [A-Za-z0-9_-]{{1,64}}")
    return job


def create_job(iot: Any, job: str, things: Sequence[str], document: JobDocument,
               config: dict[str, Any], description: str) -> bool:
    """Create ``job`` for ``things``; False if it already existed (nothing sent again)."""
    try:
        iot.create_job(jobId=job, targets=thing_arns(iot, things), document=document.to_json(),
                       description=description[:2028], targetSelection="SNAPSHOT", **config)
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ResourceAlreadyExistsException":
            raise
        logger.info("job %s already exists; not created again", job)
        return False
    logger.info("created job %s for %d stores", job, len(things))
    return True


def wave_job_config(spec: RolloutSpec, role_arn: str) -> dict[str, Any]:
    return spec.create_job_arguments(role_arn)


def rollback_job_config(spec: RolloutSpec, role_arn: str) -> dict[str, Any]:
    """A rollback goes to every store at full pace and is never aborted by failures."""
    config = spec.create_job_arguments(role_arn)
    config["jobExecutionsRolloutConfig"] = {"maximumPerMinute": MAX_PER_MINUTE}
    del config["abortConfig"]
    return config


def job_status(iot: Any, job: str) -> str:
    return str(iot.describe_job(jobId=job)["job"]["status"])


def executions(iot: Any, job: str) -> list[dict[str, Any]]:
    """Each execution of ``job`` as ``describe_job_execution`` returns it (with its
    statusDetails, which the list call leaves out)."""
    found = []
    for page in iot.get_paginator("list_job_executions_for_job").paginate(jobId=job):
        for summary in page.get("executionSummaries", []):
            thing = thing_of(summary["thingArn"])
            found.append(iot.describe_job_execution(jobId=job, thingName=thing)["execution"])
    return found


def cancel_job(iot: Any, job: str, reason: str) -> None:
    """Cancel ``job``, in-progress executions too: a store in probation then goes back to
    its previous bundle itself, and the rollback job makes sure of it."""
    try:
        iot.cancel_job(jobId=job, reasonCode=ABORT_REASON_CODE, comment=reason[:MAX_COMMENT],
                       force=True)
    except ClientError as exc:
        # A job already canceled or completed has nothing left to stop.
        if exc.response["Error"]["Code"] not in ("InvalidStateTransitionException",):
            raise
        logger.info("job %s: %s", job, exc.response["Error"]["Message"])
