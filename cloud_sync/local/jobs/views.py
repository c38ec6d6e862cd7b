"""moto's job executions in the JSON shapes of the Jobs MQTT API: JobExecution (with the job
document), JobExecutionSummary and JobExecutionState."""

from __future__ import annotations

from typing import Any

from moto.iot.models import FakeJob, FakeJobExecution

from cloud_sync.local.jobs.documents import JobDocuments
from cloud_sync.local.jobs.protocol import epoch_seconds, without_none


def execution_state(execution: FakeJobExecution) -> dict[str, Any]:
    return without_none({"status": execution.status,
                         "statusDetails": dict(execution.status_details_map) or None,
                         "versionNumber": execution.version_number})


def execution_summary(execution: FakeJobExecution) -> dict[str, Any]:
    return without_none({
        "jobId": execution.job_id,
        "queuedAt": epoch_seconds(execution.queued_at),
        "startedAt": epoch_seconds(execution.started_at),
        "lastUpdatedAt": epoch_seconds(execution.last_updated_at),
        "versionNumber": execution.version_number,
        "executionNumber": execution.execution_number,
    })


def execution_data(thing: str, job: FakeJob, execution: FakeJobExecution,
                   documents: JobDocuments, *, include_document: bool = True
                   ) -> dict[str, Any]:
    document = (documents.render(job.document, job.presigned_url_config, job.document_source)
                if include_document else None)
    return without_none({
        "jobId": execution.job_id,
        "thingName": thing,
        "jobDocument": document,
        "status": execution.status,
        "statusDetails": dict(execution.status_details_map) or None,
        "queuedAt": epoch_seconds(execution.queued_at),
        "startedAt": epoch_seconds(execution.started_at),
        "lastUpdatedAt": epoch_seconds(execution.last_updated_at),
        "versionNumber": execution.version_number,
        "executionNumber": execution.execution_number,
    })
