"""The fallback's rules on known summaries, and the settings read from the environment."""

from __future__ import annotations

from datetime import timedelta

import pytest

from cloud_sync.analysis.breaker import CLOSED, HALF_OPEN, OPEN, CircuitBreaker
from cloud_sync.analysis.cost import SONNET_4_5
from cloud_sync.analysis.fallback import ValueBands, fallback_analysis, fallback_result
from cloud_sync.analysis.schema import ShopperAnalysis
from cloud_sync.analysis.settings import AnalysisSettings
from cloud_sync.analysis.summary import ShopperSummary, summarize_lake
from tests.analysis.conftest import CATALOG, NOW, sale, shopper, weekly_rows


def test_next_purchase_is_last_plus_the_median_gap(
        summaries: dict[str, ShopperSummary]) -> None:
    alice = summaries[shopper("alice")]  # milk weekly, coffee fortnightly, last 2 days ago
    forecasts = {f.category: f for f in fallback_analysis(alice).forecasts}
    assert forecasts["Milk"].next_purchase_date == NOW.date() + timedelta(days=5)
    assert forecasts["Coffee"].next_purchase_date == NOW.date() + timedelta(days=5)
    assert forecasts["Milk"].confidence == 0.95  # 7 equal gaps: as regular as it gets
    assert forecasts["Coffee"].confidence == 0.75  # equal gaps, but only 3 of them
    assert "Every 7 days" in forecasts["Milk"].reason


def test_an_irregular_rhythm_earns_less_confidence() -> None:
    rows = [sale("dan", NOW - timedelta(days=d), {"p-apple": 1}) for d in (1, 3, 12, 14, 30)]
    dan = summarize_lake(rows, CATALOG, now=NOW)[shopper("dan")]
    [forecast] = fallback_analysis(dan).forecasts
    assert forecast.confidence < 0.6


def test_churn_from_recency_against_the_usual_gap(
        summaries: dict[str, ShopperSummary]) -> None:
    alice, bob = summaries[shopper("alice")], summaries[shopper("bob")]
    assert fallback_analysis(alice).churn_risk.level == "low"
    gone = fallback_analysis(bob).churn_risk  # weekly, last seen 30 days ago
    assert gone.level == "high" and gone.probability > 0.5
    # Bob's weekly categories are overdue: reminders are the opportunities.
    assert {o.category for o in fallback_analysis(bob).opportunities} >= {"Milk", "Bread"}


def test_value_band_from_the_populations_spend_quantiles() -> None:
    rows = []
    for i, units in enumerate((1, 2, 4, 8, 16, 32, 64, 128, 256, 512)):
        rows += [sale(f"c{i}", NOW - timedelta(days=d), {"p-bread": units}) for d in (3, 10)]
    population = summarize_lake(rows, CATALOG, now=NOW)
    bands = ValueBands.from_summaries(population.values())
    got = {s.shopper_id: fallback_analysis(s, bands).value_band for s in population.values()}
    assert got[shopper("c0")] == "low" and got[shopper("c9")] == "top"
    assert got[shopper("c4")] == "low" and got[shopper("c5")] == "medium"  # the median
    assert got[shopper("c7")] == "high" and got[shopper("c8")] == "high"


def test_the_fallback_says_it_is_one_and_fits_the_schema(
        summaries: dict[str, ShopperSummary]) -> None:
    result = fallback_result(summaries[shopper("alice")], "budget", detail="spent")
    assert result.producer == "fallback" and result.fallback_reason == "budget"
    ShopperAnalysis.model_validate(result.analysis.model_dump())
    assert fallback_analysis(summarize_lake(weekly_rows("eve", 1), CATALOG,
                                            now=NOW)[shopper("eve")]).forecasts == []


def test_breaker_opens_half_opens_for_one_trial_and_closes() -> None:
    now = [0.0]
    breaker = CircuitBreaker(threshold=2, cooldown_s=10.0, clock=lambda: now[0])
    breaker.failure()
    assert breaker.allow() and breaker.state == CLOSED
    breaker.failure()
    assert breaker.state == OPEN and not breaker.allow()
    now[0] = 10.0
    assert breaker.state == HALF_OPEN and breaker.allow() and not breaker.allow()
    breaker.failure()  # the trial failed: open again, for a new cool-down
    assert breaker.state == OPEN
    now[0] = 20.0
    assert breaker.allow()
    breaker.success()
    assert breaker.state == CLOSED and breaker.allow()


def test_settings_from_the_environment() -> None:
    settings = AnalysisSettings.from_env({
        "EDGE_ANALYSIS_MODEL_ID": SONNET_4_5, "AWS_REGION": "us-west-2",
        "EDGE_ANALYSIS_DAILY_BUDGET_USD": "2.5"})
    assert settings.bedrock.model_id == SONNET_4_5 and settings.bedrock.region == "us-west-2"
    assert settings.costs.daily_budget_usd == 2.5 and settings.bedrock.endpoint_url is None
    with pytest.raises(ValueError, match="EDGE_ANALYSIS_DAILY_BUDGET_USD"):
        AnalysisSettings.from_env({"EDGE_ANALYSIS_DAILY_BUDGET_USD": "lots"})
    assert "secret" not in repr(AnalysisSettings().bedrock)
