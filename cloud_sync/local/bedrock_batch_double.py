"""The batch inference half of the local Bedrock double: Bedrock's control-plane job API in
its rest-json wire format (botocore's `bedrock` model), run against a moto S3.

    POST /model-invocation-job                      CreateModelInvocationJob
    GET  /model-invocation-job/{jobIdentifier}      GetModelInvocationJob (id or ARN)
    GET  /model-invocation-jobs                     ListModelInvocationJobs
    POST /model-invocation-job/{jobIdentifier}/stop StopModelInvocationJob

A job reads its input JSONL (one file, or every `.jsonl` under a prefix) from S3 and writes,
as Bedrock does, `<output prefix>/<jobId>/<input file name>.out`, one line per record
(`recordId`, `modelInput`, and `modelOutput` — an Anthropic Messages answer with `usage` —
or `error: {errorCode, errorMessage}`), and `manifest.json.out` with the counts. Each record
takes the double's scripted behaviour for its shopper (or the next call's): `valid`;
`malformed` (the tool's input breaks the schema); `no_tool`; an error behaviour of the
Converse double (`throttled`, `failing`, ...) becomes the record's `error`. A job of fewer
than `MIN_RECORDS` records fails at validation, as Bedrock's does; `fail_next_job` fails one.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import PurePosixPath
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit

import boto3
from botocore.config import Config

from cloud_sync.local.bedrock_answers import (
    ERROR_TYPE_SUFFIX,
    ERRORS,
    malformed_answer,
    summary_in,
    tokens,
    valid_answer,
)


class ScriptedAnswers(Protocol):
    """What a batch job needs of the double it belongs to: the next scripted behaviour."""

    def next_behaviour(self, shopper_id: str | None) -> str: ...


MIN_RECORDS = 100  # Bedrock's minimum records in a batch job
ACCOUNT_ID = "123456789012"
ROLE_ARN = re.compile(r"^arn:aws(-[^:]+)?:iam::([0-9]{12})?:role/.+$")
JOB_ID = re.compile(r"(?:model-invocation-job/)?([a-z0-9]{12})$")
TERMINAL = frozenset({"Completed", "PartiallyCompleted", "Failed", "Stopped", "Expired"})
Reply = tuple[int, dict[str, str], dict[str, Any]]


def _error(status: int, code: str, message: str) -> Reply:
    return status, {"x-amzn-ErrorType": code + ERROR_TYPE_SUFFIX}, {"message": message}


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class BatchJobs:
    """Batch jobs of one double; `handle` answers a request, a thread runs each job."""

    def __init__(self, owner: ScriptedAnswers, s3_endpoint_url: str, *,
                 step_s: float = 0.05) -> None:
        self.owner, self.step_s = owner, step_s
        self.s3 = boto3.session.Session().client(
            "s3", endpoint_url=s3_endpoint_url, region_name="us-east-1",
            aws_access_key_id="testing", aws_secret_access_key="testing",
            config=Config(s3={"addressing_style": "path"}))
        self.jobs: dict[str, dict[str, Any]] = {}
        self.records: list[tuple[str, str, str | None, str]] = []  # job, record, shopper, how
        self._fail_next: str | None = None
        self._lock = threading.Lock()

    def fail_next_job(self, message: str = "Internal error while processing the job.") -> None:
        with self._lock:
            self._fail_next = message

    # ----------------------------------------------------------------------- API
    def handle(self, method: str, path: str, body: bytes, region: str) -> Reply:
        parts = urlsplit(path).path.strip("/").split("/")
        if method == "POST" and parts == ["model-invocation-job"]:
            return self._create(json.loads(body or b"{}"), region)
        if method == "GET" and parts == ["model-invocation-jobs"]:
            with self._lock:
                return 200, {}, {"invocationJobSummaries": [dict(j) for j in self.jobs.values()]}
        if parts[0] == "model-invocation-job" and len(parts) in (2, 3):
            found = JOB_ID.search(unquote(parts[1]))
            job = self.jobs.get(found.group(1)) if found else None
            if job is None:
                return _error(404, "ResourceNotFoundException", "No such job.")
            if method == "GET" and len(parts) == 2:
                with self._lock:
                    return 200, {}, dict(job)
            if method == "POST" and parts[2:] == ["stop"]:
                return self._stop(job)
        return _error(404, "UnknownOperationException", f"no operation at {path}")

    def _create(self, request: dict[str, Any], region: str) -> Reply:
        for name in ("jobName", "roleArn", "modelId", "inputDataConfig", "outputDataConfig"):
            if name not in request:
                return _error(400, "ValidationException", f"{name} is required.")
        if not ROLE_ARN.match(request["roleArn"]):
            return _error(400, "ValidationException", "roleArn is not a role ARN.")
        with self._lock:
            for job in self.jobs.values():
                token = request.get("clientRequestToken")
                if token and job.get("clientRequestToken") == token:
                    return 200, {}, {"jobArn": job["jobArn"]}  # an idempotent retry
                if job["jobName"] == request["jobName"]:
                    return _error(409, "ConflictException", "A job with this name exists.")
            job_id = uuid.uuid4().hex[:12]
            now = _now()
            self.jobs[job_id] = {
                "jobArn": f"arn:aws:bedrock:{region}:{ACCOUNT_ID}:model-invocation-job/{job_id}",
                "jobName": request["jobName"], "modelId": request["modelId"],
                "roleArn": request["roleArn"], "status": "Submitted", "submitTime": now,
                "lastModifiedTime": now, "inputDataConfig": request["inputDataConfig"],
                "outputDataConfig": request["outputDataConfig"],
                "modelInvocationType": request.get("modelInvocationType", "InvokeModel"),
                "timeoutDurationInHours": request.get("timeoutDurationInHours", 24),
                **({"clientRequestToken": request["clientRequestToken"]}
                   if request.get("clientRequestToken") else {})}
            failure, self._fail_next = self._fail_next, None
        threading.Thread(target=self._run, args=(job_id, failure), daemon=True,
                         name=f"batch-job-{job_id}").start()
        return 200, {}, {"jobArn": self.jobs[job_id]["jobArn"]}

    def _stop(self, job: dict[str, Any]) -> Reply:
        with self._lock:
            if job["status"] in TERMINAL:
                return _error(409, "ConflictException", f"The job is {job['status']}.")
            job.update(status="Stopped", lastModifiedTime=_now(), endTime=_now())
        return 200, {}, {}

    # --------------------------------------------------------------------- running
    def _set(self, job_id: str, **fields: Any) -> bool:
        """Update a job unless it was stopped meanwhile; False when it was."""
        with self._lock:
            job = self.jobs[job_id]
            if job["status"] == "Stopped":
                return False
            job.update(fields, lastModifiedTime=_now())
            return True

    def _run(self, job_id: str, failure: str | None) -> None:
        job = self.jobs[job_id]
        time.sleep(self.step_s)
        if not self._set(job_id, status="Validating"):
            return
        try:
            inputs = self._inputs(job["inputDataConfig"]["s3InputDataConfig"]["s3Uri"])
        except Exception as exc:  # any read failure fails the job, as Bedrock's does
            self._set(job_id, status="Failed", message=f"Cannot read the input: {exc}",
                      endTime=_now())
            return
        total = sum(len(lines) for _, lines in inputs)
        if failure or total < MIN_RECORDS:
            self._set(job_id, status="Failed", endTime=_now(), message=failure or (
                f"The job has {total} records; a batch inference job needs at least "
                f"{MIN_RECORDS}."))
            return
        time.sleep(self.step_s)
        if not self._set(job_id, status="InProgress", totalRecordCount=total):
            return
        bucket, prefix = _split(job["outputDataConfig"]["s3OutputDataConfig"]["s3Uri"])
        ok = errors = in_tokens = out_tokens = 0
        for name, lines in inputs:
            out = []
            for line in lines:
                record = json.loads(line)
                answer = self._answer(job_id, record, job["modelId"])
                if "error" in answer:
                    errors += 1
                else:
                    ok += 1
                    in_tokens += answer["modelOutput"]["usage"]["input_tokens"]
                    out_tokens += answer["modelOutput"]["usage"]["output_tokens"]
                out.append(json.dumps(answer))
            self.s3.put_object(Bucket=bucket, Key=f"{prefix}{job_id}/{name}.out",
                               Body=("\n".join(out) + "\n").encode())
        manifest = {"totalRecordCount": total, "processedRecordCount": total,
                    "successRecordCount": ok, "errorRecordCount": errors,
                    "inputTokenCount": in_tokens, "outputTokenCount": out_tokens}
        self.s3.put_object(Bucket=bucket, Key=f"{prefix}{job_id}/manifest.json.out",
                           Body=json.dumps(manifest).encode())
        self._set(job_id, status="Completed", endTime=_now(), processedRecordCount=total,
                  successRecordCount=ok, errorRecordCount=errors)

    def _inputs(self, uri: str) -> list[tuple[str, list[str]]]:
        bucket, key = _split(uri)
        keys = [key] if key.endswith(".jsonl") else sorted(
            o["Key"] for page in self.s3.get_paginator("list_objects_v2").paginate(
                Bucket=bucket, Prefix=key) for o in page.get("Contents", [])
            if o["Key"].endswith(".jsonl"))
        return [(PurePosixPath(k).name, [line for line in self.s3.get_object(
            Bucket=bucket, Key=k)["Body"].read().decode().splitlines() if line.strip()])
            for k in keys]

    def _answer(self, job_id: str, record: dict[str, Any], model_id: str) -> dict[str, Any]:
        body = record["modelInput"]
        summary = summary_in(body)
        shopper = summary.get("shopper_id") if isinstance(summary, dict) else None
        behaviour = self.owner.next_behaviour(shopper)
        with self._lock:
            self.records.append((job_id, record.get("recordId", ""), shopper, behaviour))
        line: dict[str, Any] = {"recordId": record.get("recordId"), "modelInput": body}
        if behaviour in ERRORS:
            status, _code, message = ERRORS[behaviour]
            return {**line, "error": {"errorCode": status, "errorMessage": message}}
        tool = body["tools"][0]["name"]
        if behaviour == "no_tool":
            content: list[dict[str, Any]] = [{"type": "text", "text": "Likes milk."}]
            stop, produced = "end_turn", content[0]["text"]
        else:
            answer = malformed_answer() if behaviour == "malformed" else valid_answer(summary)
            content = [{"type": "tool_use", "id": "toolu_" + uuid.uuid4().hex[:20],
                        "name": tool, "input": answer}]
            stop, produced = "tool_use", json.dumps(answer)
        usage = {"input_tokens": tokens(json.dumps(body)), "output_tokens": tokens(produced),
                 "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}
        return {**line, "modelOutput": {
            "id": "msg_bdrk_" + uuid.uuid4().hex[:20], "type": "message", "role": "assistant",
            "model": model_id, "content": content, "stop_reason": stop,
            "stop_sequence": None, "usage": usage}}


def _split(uri: str) -> tuple[str, str]:
    """(bucket, key or prefix) of an s3:// URI; a prefix keeps its trailing slash."""
    parsed = urlsplit(uri)
    key = parsed.path.lstrip("/")
    return parsed.netloc, key if key.endswith(".jsonl") or not key or key.endswith("/") \
        else key + "/"
