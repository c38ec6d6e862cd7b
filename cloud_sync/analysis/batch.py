"""The nightly fleet run through Bedrock batch inference (CreateModelInvocationJob).

Each shopper to analyse becomes one JSONL record, `{"recordId", "modelInput"}`, the model
input an Anthropic Messages body (InvokeModel's format, which batch takes for forced tool
use) built by the same privacy guard as an on-demand call. The records of each model (two
with an A/B) go to S3 as one job's input (at most `max_records_per_job` a job); the job is
polled until it ends; its `<output>/<jobId>/<file>.out` lines are joined back to shoppers by
`recordId` and validated like an on-demand answer. A record with an `error`, a malformed
answer, a missing line or a failed job gives that shopper the fallback, saying why; only
the records that failed are affected. Costs come from each record's `usage` at the batch
price (half the on-demand one).

Bedrock refuses a job of fewer than 100 records: a model with fewer shoppers than that is
asked on demand (Converse) instead, and the report says so. A shopper whose summary has not
changed since its last Bedrock analysis is not sent at all.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import boto3
from botocore.config import Config

from cloud_sync.analysis.bedrock import Analyst, AnswerError, validate_tool_input
from cloud_sync.analysis.cost import converse_usage, cost_of
from cloud_sync.analysis.guard import GuardError, build_invoke_body, check_invoke_body
from cloud_sync.analysis.schema import TOOL_NAME, AnalysisResult, ShopperAnalysis
from cloud_sync.analysis.summary import ShopperSummary, summary_digest

logger = logging.getLogger(__name__)

MIN_BATCH_RECORDS = 100  # Bedrock's minimum records in a batch inference job
MAX_BATCH_RECORDS = 50_000  # records a job by default quota (varies by model and account)
TERMINAL = frozenset({"Completed", "PartiallyCompleted", "Failed", "Stopped", "Expired"})
DONE = frozenset({"Completed", "PartiallyCompleted"})  # the output is there to read
# Budget check before a job: the output is unknown until it ends, so it is estimated, a
# base for the churn, household and value parts plus a forecast line a category.
EXPECTED_OUTPUT_BASE_TOKENS, EXPECTED_OUTPUT_PER_CATEGORY = 300, 60
BYTES_PER_TOKEN = 4


@dataclass(frozen=True)
class BatchSettings:
    bucket: str  # where the job's input and output live (Bedrock's role must reach it)
    role_arn: str  # the service role Bedrock assumes to read and write that bucket
    prefix: str = "analysis-batch"
    poll_s: float = 60.0  # jobs take minutes to hours: a minute between looks is plenty
    timeout_s: float = 24 * 3600.0  # Bedrock's own default job timeout is 24 hours
    max_records_per_job: int = MAX_BATCH_RECORDS


@dataclass
class JobReport:
    model_id: str
    job_arn: str | None
    status: str
    message: str | None
    records: int
    succeeded: int = 0
    failed: int = 0


@dataclass
class FleetReport:
    run_id: str
    results: list[AnalysisResult] = field(default_factory=list)
    jobs: list[JobReport] = field(default_factory=list)
    on_demand: dict[str, str] = field(default_factory=dict)  # model -> why not batch
    reused: int = 0
    seconds: float = 0.0

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = defaultdict(int)
        for r in self.results:
            out[f"{r.producer}/{r.mode}" if r.producer == "bedrock"
                else f"fallback/{r.fallback_reason}"] += 1
        return dict(out)


class FleetRun:
    """Batch analysis of many shoppers, with the on-demand `Analyst`'s settings, budget,
    history, A/B arms and fallback (one implementation of each)."""

    def __init__(self, analyst: Analyst, batch: BatchSettings, *, s3: Any,
                 bedrock: Any = None) -> None:
        self.analyst, self.batch, self.s3 = analyst, batch, s3
        self._bedrock = bedrock

    def bedrock(self) -> Any:
        if self._bedrock is None:
            b = self.analyst.settings.bedrock
            self._bedrock = boto3.session.Session().client(
                "bedrock", region_name=b.region, endpoint_url=b.endpoint_url,
                aws_access_key_id=b.access_key_id, aws_secret_access_key=b.secret_access_key,
                config=Config(retries={"mode": "standard",  # type: ignore[typeddict-item]
                                       "total_max_attempts": b.max_attempts},
                              connect_timeout=b.connect_timeout_s,
                              read_timeout=b.read_timeout_s))
        return self._bedrock

    def run(self, summaries: Iterable[ShopperSummary], *, now: datetime | None = None
            ) -> FleetReport:
        started = time.perf_counter()
        now = now or datetime.now(UTC)
        report = FleetReport(run_id=f"{now:%Y%m%dt%H%M%S}-{uuid.uuid4().hex[:6]}")
        by_model: dict[str, list[tuple[ShopperSummary, dict[str, Any]]]] = defaultdict(list)
        configured, why = self.analyst.configured()
        for summary in summaries:
            last = self.analyst.reusable(summary)
            if last is not None:
                report.reused += 1
                report.results.append(last)
                continue
            try:
                body = build_invoke_body(summary, self.analyst.taxonomy)
            except GuardError as exc:
                self._keep(report, self.analyst.fallback(summary, "refused", str(exc)))
                continue
            if not configured:
                self._keep(report, self.analyst.fallback(summary, "not configured", why))
                continue
            by_model[self.analyst.model_for(summary.shopper_id)[0]].append((summary, body))
        submitted: list[tuple[JobReport, dict[str, ShopperSummary]]] = []
        for model_id, records in by_model.items():
            if len(records) < MIN_BATCH_RECORDS:
                report.on_demand[model_id] = (
                    f"{len(records)} shoppers: under Bedrock's batch minimum of "
                    f"{MIN_BATCH_RECORDS} records, asked on demand (Converse)")
                logger.info("model %s: %s", model_id, report.on_demand[model_id])
                report.results += self.analyst.analyze_all([s for s, _ in records])
                continue
            size = self.batch.max_records_per_job
            for i in range(0, len(records), size):
                # Numbered across the run: a job's name and token must be unique to it.
                submitted.append(self._submit(report, model_id, len(submitted),
                                              records[i:i + size]))
        # Every job submitted first, then waited for: Bedrock runs them side by side.
        for job, records_by_id in submitted:
            self._collect(report, job, records_by_id)
        report.seconds = round(time.perf_counter() - started, 3)
        return report

    def _keep(self, report: FleetReport, result: AnalysisResult) -> None:
        self.analyst.history.save(result)
        report.results.append(result)

    # ------------------------------------------------------------------ one job
    def _submit(self, report: FleetReport, model_id: str, n: int,
                chunk: Sequence[tuple[ShopperSummary, dict[str, Any]]]
                ) -> tuple[JobReport, dict[str, ShopperSummary]]:
        records_by_id = {f"R{i:010d}": summary for i, (summary, _) in enumerate(chunk)}
        budget = self.analyst.budget
        estimate = sum(_estimate(body, summary, model_id, self.analyst) for summary, body
                       in chunk)
        if budget.spent() + estimate > budget.limit_usd:
            message = (f"estimated ${estimate:.2f} at the batch price would pass the daily "
                       f"budget ${budget.limit_usd:g} (spent ${budget.spent():.2f})")
            return JobReport(model_id, None, "NotSubmitted", message, len(chunk)), records_by_id
        lines = []
        for record_id, (_, body) in zip(records_by_id, chunk, strict=True):
            check_invoke_body(body, self.analyst.taxonomy)  # the last gate before upload
            lines.append(json.dumps({"recordId": record_id, "modelInput": body},
                                    separators=(",", ":")))
        base = f"{self.batch.prefix}/{report.run_id}/{n:03d}"
        self.s3.put_object(Bucket=self.batch.bucket, Key=f"{base}/input/records.jsonl",
                           Body=("\n".join(lines) + "\n").encode())
        job_arn = self.bedrock().create_model_invocation_job(
            jobName=f"instore-analysis-{report.run_id}-{n:03d}",
            clientRequestToken=f"{report.run_id}-{n:03d}",  # a retried create is one job
            roleArn=self.batch.role_arn, modelId=model_id, modelInvocationType="InvokeModel",
            inputDataConfig={"s3InputDataConfig": {
                "s3InputFormat": "JSONL",
                "s3Uri": f"s3://{self.batch.bucket}/{base}/input/records.jsonl"}},
            outputDataConfig={"s3OutputDataConfig": {
                "s3Uri": f"s3://{self.batch.bucket}/{base}/output/"}})["jobArn"]
        logger.info("batch job %s: %d records of model %s", job_arn, len(chunk), model_id)
        return JobReport(model_id, job_arn, "Submitted", None, len(chunk)), records_by_id

    def _wait(self, job: JobReport) -> dict[str, Any]:
        deadline = time.monotonic() + self.batch.timeout_s
        while True:
            state = self.bedrock().get_model_invocation_job(jobIdentifier=job.job_arn)
            if state["status"] in TERMINAL:
                return dict(state)
            if time.monotonic() > deadline:
                self.bedrock().stop_model_invocation_job(jobIdentifier=job.job_arn)
                return {**state, "status": "Stopped",
                        "message": f"no result in {self.batch.timeout_s:g} s: stopped"}
            time.sleep(self.batch.poll_s)

    def _collect(self, report: FleetReport, job: JobReport,
                 records_by_id: dict[str, ShopperSummary]) -> None:
        report.jobs.append(job)
        answered: dict[str, dict[str, Any]] = {}
        if job.job_arn is not None:
            state = self._wait(job)
            job.status, job.message = state["status"], state.get("message")
            if job.status in DONE:
                answered = self._read_output(state)
        for record_id, summary in records_by_id.items():
            result = self._result(job, summary, answered.get(record_id))
            job.succeeded += result.producer == "bedrock"
            job.failed += result.producer != "bedrock"
            self._keep(report, result)

    def _read_output(self, state: dict[str, Any]) -> dict[str, dict[str, Any]]:
        """Every output line of the job, by recordId (a line that is not JSON is skipped:
        its shopper then has no answer, and gets the fallback)."""
        out_uri = state["outputDataConfig"]["s3OutputDataConfig"]["s3Uri"]
        bucket, _, prefix = out_uri.removeprefix("s3://").partition("/")
        job_id = state["jobArn"].rsplit("/", 1)[-1]
        prefix = f"{prefix.rstrip('/')}/{job_id}/"
        lines: dict[str, dict[str, Any]] = {}
        pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        for obj in (o for page in pages for o in page.get("Contents", [])):
            if not obj["Key"].endswith(".jsonl.out"):
                continue  # manifest.json.out
            body = self.s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
            for text in body.decode().splitlines():
                try:
                    line = json.loads(text)
                    lines[str(line["recordId"])] = line
                except (ValueError, KeyError, TypeError):
                    logger.warning("batch output %s: a line that is not a record", obj["Key"])
        return lines

    def _result(self, job: JobReport, summary: ShopperSummary, line: dict[str, Any] | None
                ) -> AnalysisResult:
        fallback = self.analyst.fallback
        if job.status == "NotSubmitted":
            return fallback(summary, "budget", job.message or "")
        if job.status not in DONE:
            return fallback(summary, "failed", f"batch job {job.status}: {job.message}")
        if line is None:
            return fallback(summary, "failed", "no output record for the shopper")
        if "error" in line or "modelOutput" not in line:
            error = line.get("error") or {}
            return fallback(summary, "failed", f"batch record error {error.get('errorCode')}: "
                                               f"{error.get('errorMessage')}")
        output = line["modelOutput"]
        cost = cost_of(converse_usage(output.get("usage") or {}), job.model_id,
                       self.analyst.settings.costs, batch=True)
        self.analyst.budget.record(cost.dollars)
        try:
            analysis = parse_message(output, summary)
        except AnswerError as exc:
            return fallback(summary, "malformed", str(exc), cost)
        return AnalysisResult(
            shopper_id=summary.shopper_id, producer="bedrock", model_id=job.model_id,
            analysis=analysis, cost=cost, summary_digest=summary_digest(summary),
            created_at=datetime.now(UTC), as_of=summary.as_of, mode="batch",
            arm=self.analyst.model_for(summary.shopper_id)[1])


def parse_message(output: dict[str, Any], summary: ShopperSummary) -> ShopperAnalysis:
    """The forced tool's input of an Anthropic Messages answer, validated."""
    content = output.get("content") if isinstance(output, dict) else None
    tool = next((b for b in content or [] if isinstance(b, dict)
                 and b.get("type") == "tool_use" and b.get("name") == TOOL_NAME), None)
    if tool is None:
        raise AnswerError(f"no {TOOL_NAME} tool call (stop reason "
                          f"{output.get('stop_reason') if isinstance(output, dict) else None})")
    return validate_tool_input(tool.get("input"), summary)


def _estimate(body: dict[str, Any], summary: ShopperSummary, model_id: str,
              analyst: Analyst) -> float:
    """A record's expected dollars at the batch price: input bytes ÷ 4, output estimated."""
    price, costs = analyst.settings.costs.price(model_id), analyst.settings.costs
    tokens_in = len(json.dumps(body).encode()) / BYTES_PER_TOKEN
    tokens_out = EXPECTED_OUTPUT_BASE_TOKENS + EXPECTED_OUTPUT_PER_CATEGORY * len(
        summary.categories)
    return (tokens_in * price.input + tokens_out * price.output) * costs.batch_factor / 1e6
