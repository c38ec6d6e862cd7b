"""The fleet run through Bedrock batch inference: real boto3 against moto's S3 and the
double's batch job API over HTTP; the JSONL's shape, partial failures joined back by
recordId, batch prices from each record's usage, the under-100 rule, the budget, A/B jobs."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from cloud_sync.analysis.ab import ABConfig
from cloud_sync.analysis.batch import BatchSettings, FleetRun
from cloud_sync.analysis.cost import HAIKU_4_5, SONNET_4_5
from cloud_sync.analysis.guard import ANTHROPIC_VERSION, check_invoke_body
from cloud_sync.analysis.schema import TOOL_NAME
from cloud_sync.analysis.summary import ShopperSummary
from cloud_sync.local.bedrock_double import BedrockDouble
from cloud_sync.local.moto_server import MotoServer
from tests.analysis.conftest import TAXONOMY, MakeAnalyst, many, shopper

ROLE = "arn:aws:iam::123456789012:role/bedrock-batch"


@pytest.fixture
def alice(summaries: dict[str, ShopperSummary]) -> ShopperSummary:
    return summaries[shopper("alice")]


def fleet(make_analyst: MakeAnalyst, double: BedrockDouble, moto: MotoServer, bucket: str,
          **analyst: Any) -> FleetRun:
    runner = make_analyst(endpoint_url=double.endpoint_url, **analyst)
    return FleetRun(runner, BatchSettings(bucket=bucket, role_arn=ROLE, poll_s=0.02,
                                          timeout_s=20.0), s3=moto.boto3_client("s3"))


def s3_lines(moto: MotoServer, bucket: str, suffix: str) -> list[dict[str, Any]]:
    s3 = moto.boto3_client("s3")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])
            if o["Key"].endswith(suffix)]
    return [json.loads(line) for key in keys
            for line in s3.get_object(Bucket=bucket, Key=key)["Body"].read().splitlines()]


def test_a_batch_round_trip_with_partial_failures(
        batch_double: BedrockDouble, moto: MotoServer, batch_bucket: str,
        make_analyst: MakeAnalyst, alice: ShopperSummary) -> None:
    shoppers = many(alice, 120)
    batch_double.script_shopper(shopper("s5"), "malformed")
    batch_double.script_shopper(shopper("s7"), "failing")
    batch_double.script_shopper(shopper("s9"), "no_tool")
    hostile = shoppers[11].categories[0].model_copy(update={"category": "Call 5551234567"})
    shoppers[11] = shoppers[11].model_copy(update={"categories": [hostile]})
    run = fleet(make_analyst, batch_double, moto, batch_bucket)
    report = run.run(shoppers)

    [job] = report.jobs
    assert (job.status, job.records, job.succeeded, job.failed) == ("Completed", 119, 116, 3)
    by_id = {r.shopper_id: r for r in report.results}
    assert len(by_id) == 120 and batch_double.calls() == 0  # no Converse call at all
    assert by_id[shopper("s5")].fallback_reason == "malformed"
    assert "schema error" in (by_id[shopper("s5")].detail or "")
    assert by_id[shopper("s7")].fallback_reason == "failed"
    assert "batch record error 424" in (by_id[shopper("s7")].detail or "")
    assert by_id[shopper("s9")].fallback_reason == "malformed"
    assert by_id[shopper("s11")].fallback_reason == "refused"  # never left: not in the JSONL
    ok = [r for r in report.results if r.producer == "bedrock"]
    assert len(ok) == 116 and {r.mode for r in ok} == {"batch"}
    assert {f.category for f in ok[0].analysis.forecasts} == {"Milk", "Bread", "Coffee"}

    # What was uploaded: InvokeModel records with the forced tool, each through the guard.
    records = s3_lines(moto, batch_bucket, "records.jsonl")
    assert len(records) == 119 and shopper("s11") not in json.dumps(records)
    for record in records:
        body = record["modelInput"]
        assert body["anthropic_version"] == ANTHROPIC_VERSION
        assert body["tool_choice"] == {"type": "tool", "name": TOOL_NAME}
        check_invoke_body(body, TAXONOMY)
    # Costs: each record's usage at half the on-demand price (Haiku $1 / $5 a million).
    outputs = {o["recordId"]: o for o in s3_lines(moto, batch_bucket, ".jsonl.out")}
    assert len(outputs) == 119
    paid = [o["modelOutput"]["usage"] for o in outputs.values() if "modelOutput" in o]
    expected = sum(u["input_tokens"] * 1.0 + u["output_tokens"] * 5.0 for u in paid) / 2e6
    assert sum(r.cost.dollars for r in report.results) == pytest.approx(expected)
    assert run.analyst.budget.spent() == pytest.approx(expected)
    assert report.counts() == {"bedrock/batch": 116, "fallback/malformed": 2,
                               "fallback/failed": 1, "fallback/refused": 1}
    assert len(run.analyst.history.rows()) == 120

    # The same shoppers again: unchanged since their Bedrock analysis, nothing is sent.
    again = run.run(shoppers)
    assert again.reused == 116 and len(batch_double.batch.jobs) == 1  # type: ignore[union-attr]


def test_under_100_shoppers_go_on_demand_and_say_so(
        batch_double: BedrockDouble, moto: MotoServer, batch_bucket: str,
        make_analyst: MakeAnalyst, alice: ShopperSummary) -> None:
    report = fleet(make_analyst, batch_double, moto, batch_bucket).run(many(alice, 30))
    assert report.jobs == [] and batch_double.calls() == 30
    assert "under Bedrock's batch minimum of 100" in report.on_demand[HAIKU_4_5]
    assert {(r.producer, r.mode) for r in report.results} == {("bedrock", "on-demand")}


def test_a_failed_job_gives_its_shoppers_the_fallback(
        batch_double: BedrockDouble, moto: MotoServer, batch_bucket: str,
        make_analyst: MakeAnalyst, alice: ShopperSummary) -> None:
    assert batch_double.batch is not None
    batch_double.batch.fail_next_job("Internal error while processing the job.")
    report = fleet(make_analyst, batch_double, moto, batch_bucket).run(many(alice, 100))
    assert report.jobs[0].status == "Failed"
    assert {r.fallback_reason for r in report.results} == {"failed"}
    assert "batch job Failed: Internal error" in (report.results[0].detail or "")


def test_the_budget_stops_a_job_before_it_is_submitted(
        batch_double: BedrockDouble, moto: MotoServer, batch_bucket: str,
        make_analyst: MakeAnalyst, alice: ShopperSummary) -> None:
    report = fleet(make_analyst, batch_double, moto, batch_bucket,
                   budget_usd=0.01).run(many(alice, 100))
    assert report.jobs[0].status == "NotSubmitted"
    assert batch_double.batch is not None and batch_double.batch.jobs == {}
    assert {r.fallback_reason for r in report.results} == {"budget"}
    assert "daily budget $0.01" in (report.results[0].detail or "")


def test_an_ab_run_sends_one_job_per_arm(
        batch_double: BedrockDouble, moto: MotoServer, batch_bucket: str,
        make_analyst: MakeAnalyst, alice: ShopperSummary) -> None:
    run = fleet(make_analyst, batch_double, moto, batch_bucket)
    run.analyst.arms = ABConfig(share_b=0.5, salt="batch")
    report = run.run(many(alice, 230))
    assert sorted(j.model_id for j in report.jobs) == sorted([HAIKU_4_5, SONNET_4_5])
    for r in report.results:
        assert r.producer == "bedrock" and r.mode == "batch"
        assert r.model_id == run.analyst.arms.model(r.arm)  # type: ignore[arg-type]
    jobs = batch_double.batch.jobs.values()  # type: ignore[union-attr]
    assert sum(j["successRecordCount"] for j in jobs) == 230


def test_the_double_speaks_the_batch_api(batch_double: BedrockDouble, moto: MotoServer,
                                         batch_bucket: str, make_analyst: MakeAnalyst) -> None:
    client = FleetRun(make_analyst(endpoint_url=batch_double.endpoint_url),
                      BatchSettings(bucket=batch_bucket, role_arn=ROLE), s3=None).bedrock()
    moto.boto3_client("s3").put_object(Bucket=batch_bucket, Key="in/few.jsonl",
                                       Body=b'{"recordId": "R1", "modelInput": {}}\n')
    job = {"roleArn": ROLE, "modelId": HAIKU_4_5,
           "inputDataConfig": {"s3InputDataConfig": {"s3Uri": f"s3://{batch_bucket}/in/"}},
           "outputDataConfig": {"s3OutputDataConfig": {"s3Uri": f"s3://{batch_bucket}/out/"}}}
    arn = client.create_model_invocation_job(jobName="few", **job)["jobArn"]
    assert arn.startswith("arn:aws:bedrock:us-east-1:123456789012:model-invocation-job/")
    with pytest.raises(ClientError) as conflict:
        client.create_model_invocation_job(jobName="few", **job)
    assert conflict.value.response["Error"]["Code"] == "ConflictException"
    state = client.get_model_invocation_job(jobIdentifier=arn.rsplit("/", 1)[1])
    for _ in range(200):
        if state["status"] == "Failed":
            break
        state = client.get_model_invocation_job(jobIdentifier=arn)  # by ARN too
    assert state["status"] == "Failed" and "at least 100" in state["message"]
    assert state["submitTime"].tzinfo is not None  # an ISO 8601 timestamp, parsed
    summaries = client.list_model_invocation_jobs()["invocationJobSummaries"]
    assert [s["jobName"] for s in summaries] == ["few"]
    with pytest.raises(ClientError) as missing:
        client.get_model_invocation_job(jobIdentifier="abcdefabcdef")
    assert missing.value.response["Error"]["Code"] == "ResourceNotFoundException"
