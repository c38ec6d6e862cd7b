"""Costs from the responses' usage, the daily budget, and no re-analysis of an unchanged
shopper."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cloud_sync.analysis.cost import HAIKU_4_5, SONNET_4_5, CostSettings, DailyBudget, cost_of
from cloud_sync.analysis.summary import ShopperSummary, summarize_lake
from cloud_sync.local.bedrock_double import BedrockDouble
from tests.analysis.conftest import CATALOG, NOW, MakeAnalyst, sale, shopper, weekly_rows


def _dollars(usage: dict[str, int], price_in: float, price_out: float) -> float:
    return (usage["inputTokens"] * price_in + usage["outputTokens"] * price_out
            + usage["cacheReadInputTokens"] * price_in * 0.1
            + usage["cacheWriteInputTokens"] * price_in * 1.25) / 1e6


@pytest.mark.parametrize(("model", "price_in", "price_out"),
                         [(HAIKU_4_5, 1.0, 5.0), (SONNET_4_5, 3.0, 15.0)])
def test_costs_match_the_responses_usage(
        double: BedrockDouble, make_analyst: MakeAnalyst,
        summaries: dict[str, ShopperSummary], model: str, price_in: float,
        price_out: float) -> None:
    analyst = make_analyst(model_id=model)
    results = [analyst.analyze(s) for s in summaries.values()]
    usages = [r.usage for r in double.received]
    assert all(u is not None for u in usages) and len(usages) == 2
    first, second = usages[0], usages[1]
    assert first and second
    if model == SONNET_4_5:  # the shared prefix is written, then read
        assert first["cacheWriteInputTokens"] > 0
        assert second["cacheReadInputTokens"] == first["cacheWriteInputTokens"]
        assert results[1].cost.dollars < results[0].cost.dollars  # the cache pays
    else:  # under Haiku 4.5's 4,096-token floor nothing is cached, all is plain input
        assert first["cacheWriteInputTokens"] == second["cacheReadInputTokens"] == 0
    for result, usage in zip(results, usages, strict=True):
        assert usage is not None and result.model_id == model
        assert result.cost.input_tokens == usage["inputTokens"]
        assert result.cost.output_tokens == usage["outputTokens"]
        assert result.cost.cache_read_tokens == usage["cacheReadInputTokens"]
        assert result.cost.dollars == pytest.approx(_dollars(usage, price_in, price_out))
    assert analyst.budget.spent() == pytest.approx(sum(r.cost.dollars for r in results))


def test_batch_is_half_price_and_an_unpriced_model_is_refused(
        make_analyst: MakeAnalyst) -> None:
    usage = {"inputTokens": 1_000_000, "outputTokens": 1_000_000}
    settings = CostSettings()
    assert cost_of(usage, HAIKU_4_5, settings).dollars == pytest.approx(6.0)
    assert cost_of(usage, HAIKU_4_5, settings, batch=True).dollars == pytest.approx(3.0)
    with pytest.raises(ValueError, match="no price for model"):
        make_analyst(model_id="us.anthropic.claude-unknown-v1:0")


def test_a_budget_that_runs_out_stops_new_calls(
        double: BedrockDouble, make_analyst: MakeAnalyst,
        summaries: dict[str, ShopperSummary]) -> None:
    analyst = make_analyst(budget_usd=1e-6)  # less than one call
    results = [analyst.analyze(s) for s in summaries.values()]
    assert [r.producer for r in results] == ["bedrock", "fallback"]
    assert results[1].fallback_reason == "budget" and double.calls() == 1
    assert "daily budget" in (results[1].detail or "")


def test_the_budget_is_kept_by_utc_day_in_a_file(tmp_path: Path) -> None:
    path = tmp_path / "budget.sqlite"
    budget = DailyBudget(path, limit_usd=1.0)
    budget.record(0.6, now=NOW)
    budget.record(0.5, now=NOW)
    again = DailyBudget(path, limit_usd=1.0)  # another worker, or after a restart
    assert again.spent(now=NOW) == pytest.approx(1.1) and not again.allows(now=NOW)
    late_evening = datetime(2026, 3, 2, 23, 59, tzinfo=UTC)
    assert not again.allows(now=late_evening)
    assert again.allows(now=NOW + timedelta(days=1)) and again.spent(NOW + timedelta(1)) == 0


def test_an_unchanged_shopper_is_not_analysed_again(
        double: BedrockDouble, make_analyst: MakeAnalyst) -> None:
    rows = weekly_rows("alice")
    first = make_analyst().analyze(summarize_lake(rows, CATALOG, now=NOW)[shopper("alice")])
    # Three days on, nothing bought: the same analysis, from another analyst (a new run).
    later = summarize_lake(rows, CATALOG, now=NOW + timedelta(days=3))[shopper("alice")]
    again = make_analyst().analyze(later)
    assert again == first and double.calls() == 1
    bought = [*rows, sale("alice", NOW + timedelta(days=1), {"p-nappies": 1.0})]
    changed = summarize_lake(bought, CATALOG, now=NOW + timedelta(days=3))[shopper("alice")]
    assert make_analyst().analyze(changed).producer == "bedrock" and double.calls() == 2
    assert len(make_analyst().history.all_of(shopper("alice"))) == 2


def test_a_fallback_is_no_reason_not_to_ask_bedrock_next_time(
        double: BedrockDouble, make_analyst: MakeAnalyst,
        summaries: dict[str, ShopperSummary]) -> None:
    alice = summaries[shopper("alice")]
    assert make_analyst(local=False).analyze(alice).fallback_reason == "not configured"
    assert make_analyst().analyze(alice).producer == "bedrock" and double.calls() == 1
