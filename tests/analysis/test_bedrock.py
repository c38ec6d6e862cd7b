"""Analyses through real boto3 against the local Bedrock double (real HTTP, real SigV4,
real error parsing and retries): each way a call can go, and who answers in the end."""

from __future__ import annotations

import json
import time

import pytest

from cloud_sync.analysis.breaker import OPEN
from cloud_sync.analysis.guard import SYSTEM_PROMPT
from cloud_sync.analysis.schema import TOOL_NAME, ShopperAnalysis
from cloud_sync.analysis.summary import ShopperSummary
from cloud_sync.local.bedrock_double import BedrockDouble
from tests.analysis.conftest import MakeAnalyst, shopper


@pytest.fixture
def alice(summaries: dict[str, ShopperSummary]) -> ShopperSummary:
    return summaries[shopper("alice")]


def test_a_valid_answer_is_bedrocks_and_the_request_has_the_real_shape(
        double: BedrockDouble, make_analyst: MakeAnalyst, alice: ShopperSummary) -> None:
    result = make_analyst().analyze(alice)
    assert result.producer == "bedrock" and result.fallback_reason is None
    assert result.model_id == "us.anthropic.claude-haiku-4-5-20251001-v1:0"
    assert {f.category for f in result.analysis.forecasts} == {"Milk", "Bread", "Coffee"}
    [call] = double.received
    assert call.model_id == result.model_id  # the colon survived URL quoting
    assert call.headers["authorization"].startswith("AWS4-HMAC-SHA256 Credential=testing/")
    body = json.loads(call.body)
    assert body["system"] == [{"text": SYSTEM_PROMPT}, {"cachePoint": {"type": "default"}}]
    assert body["toolConfig"]["toolChoice"] == {"tool": {"name": TOOL_NAME}}
    schema = body["toolConfig"]["tools"][0]["toolSpec"]["inputSchema"]["json"]
    assert schema == ShopperAnalysis.model_json_schema()


def test_malformed_is_retried_once_then_the_fallback_answers(
        double: BedrockDouble, make_analyst: MakeAnalyst, alice: ShopperSummary) -> None:
    double.script("malformed", "malformed")
    result = make_analyst().analyze(alice)
    assert double.calls() == 2
    assert result.producer == "fallback" and result.fallback_reason == "malformed"
    assert "schema error" in (result.detail or "")
    assert result.cost.calls == 2 and result.cost.dollars > 0  # the bad answers were paid


@pytest.mark.parametrize("first", ["malformed", "no_tool"])
def test_a_malformed_answer_then_a_valid_one_is_bedrocks(
        double: BedrockDouble, make_analyst: MakeAnalyst, alice: ShopperSummary,
        first: str) -> None:
    double.script(first)
    result = make_analyst().analyze(alice)
    assert result.producer == "bedrock" and double.calls() == 2


@pytest.mark.parametrize("error", ["throttled", "not_ready", "unavailable"])
def test_botocore_retries_then_succeeds(double: BedrockDouble, make_analyst: MakeAnalyst,
                                        alice: ShopperSummary, error: str) -> None:
    double.script(error)
    result = make_analyst().analyze(alice)
    assert result.producer == "bedrock"
    assert [r.behaviour for r in double.received] == [error, "valid"]


def test_throttling_beyond_botocores_attempts_is_a_failure(
        double: BedrockDouble, make_analyst: MakeAnalyst, alice: ShopperSummary) -> None:
    double.script("throttled", "throttled")
    result = make_analyst(max_attempts=2).analyze(alice)
    assert result.producer == "fallback" and result.fallback_reason == "failed"
    assert "ThrottlingException" in (result.detail or "") and double.calls() == 2


@pytest.mark.parametrize("error", ["timeout", "failing"])
def test_model_timeout_or_error_gets_one_retry_of_our_own(
        double: BedrockDouble, make_analyst: MakeAnalyst, alice: ShopperSummary,
        error: str) -> None:
    double.script(error)
    assert make_analyst().analyze(alice).producer == "bedrock"
    assert double.calls() == 2  # botocore did not retry it; we did, once
    double.script(error, error)
    other = make_analyst(max_attempts=1)
    result = other.analyze(alice.model_copy(update={"total_spend": 1.0,
                                                    "shopper_id": shopper("carol")}))
    assert result.fallback_reason == "failed" and double.calls() == 4


def test_a_slow_model_times_out_and_the_fallback_answers(
        double: BedrockDouble, make_analyst: MakeAnalyst, alice: ShopperSummary) -> None:
    double.script("slow")
    started = time.perf_counter()
    result = make_analyst(max_attempts=1, read_timeout_s=0.3).analyze(alice)
    assert result.fallback_reason == "failed" and "ReadTimeout" in (result.detail or "")
    assert time.perf_counter() - started < 2.0


def test_the_circuit_opens_and_the_fallback_answers_without_calling(
        double: BedrockDouble, make_analyst: MakeAnalyst,
        summaries: dict[str, ShopperSummary]) -> None:
    analyst = make_analyst(max_attempts=1, breaker_threshold=2, breaker_cooldown_s=0.5)
    double.default = "failing"
    alice = summaries[shopper("alice")]
    variants = [alice.model_copy(update={"shopper_id": shopper(f"s{i}")}) for i in range(4)]
    results = [analyst.analyze(s) for s in variants]
    assert [r.fallback_reason for r in results] == ["failed", "failed", "circuit open",
                                                    "circuit open"]
    assert double.calls() == 4 and analyst.breaker.state == OPEN  # 2 shoppers x 2 tries
    time.sleep(0.6)  # half-open: one trial goes through, and its success closes it
    double.default = "valid"
    assert analyst.analyze(alice).producer == "bedrock"
    assert analyst.breaker.state == "closed"


def test_not_configured_says_so(make_analyst: MakeAnalyst, double: BedrockDouble,
                                alice: ShopperSummary) -> None:
    result = make_analyst(local=False).analyze(alice)
    assert result.producer == "fallback" and result.fallback_reason == "not configured"
    assert "no AWS credentials" in (result.detail or "")
    assert result.analysis.forecasts and double.calls() == 0


def test_per_shopper_scripts_and_concurrent_analyses(
        double: BedrockDouble, make_analyst: MakeAnalyst,
        summaries: dict[str, ShopperSummary]) -> None:
    alice = summaries[shopper("alice")]
    many = [alice.model_copy(update={"shopper_id": shopper(f"s{i}")}) for i in range(8)]
    double.script_shopper(shopper("s3"), "malformed", "malformed")
    results = make_analyst(concurrency=3).analyze_all(many)
    by_id = {r.shopper_id: r for r in results}
    assert by_id[shopper("s3")].fallback_reason == "malformed"
    assert sum(r.producer == "bedrock" for r in results) == 7 and double.calls() == 9
