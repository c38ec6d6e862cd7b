"""The A/B of analysis models: deterministic assignment with the configured share, the arm
stored with each analysis, the significance tests and the winner rule."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from cloud_sync.analysis.ab import ABConfig, ab_report, two_proportions
from cloud_sync.analysis.accuracy import Score
from cloud_sync.analysis.history import AnalysisHistory
from cloud_sync.analysis.schema import AnalysisResult, Cost
from cloud_sync.analysis.summary import ShopperSummary
from tests.analysis.conftest import MakeAnalyst, shopper

AB = ABConfig(share_b=0.3, salt="test")


def test_assignment_is_deterministic_salted_and_near_the_share() -> None:
    ids = [shopper(f"c{i}") for i in range(4000)]
    arms = [AB.assign(i) for i in ids]
    assert arms == [AB.assign(i) for i in ids]  # same shopper, same arm, every time
    assert abs(arms.count("B") / len(arms) - 0.3) < 0.03
    other = [ABConfig(share_b=0.3, salt="another").assign(i) for i in ids]
    assert other != arms  # a new salt reshuffles
    assert {ABConfig(share_b=0.0).assign(i) for i in ids[:50]} == {"A"}
    with pytest.raises(ValueError, match="share"):
        ABConfig(share_b=1.5)


def test_each_arm_is_analysed_by_its_model_and_the_arm_is_stored(
        make_analyst: MakeAnalyst, summaries: dict[str, ShopperSummary]) -> None:
    alice = summaries[shopper("alice")]
    many = [alice.model_copy(update={"shopper_id": shopper(f"s{i}")}) for i in range(12)]
    analyst = make_analyst()
    analyst.arms = ABConfig(share_b=0.5, salt="test")
    results = analyst.analyze_all(many)
    for r in results:
        assert r.arm == analyst.arms.assign(r.shopper_id)
        assert r.model_id == analyst.arms.model(r.arm)
    assert {r.arm for r in results} == {"A", "B"}
    stored = {r.shopper_id: r.arm for _, r in analyst.history.rows()}
    assert stored == {r.shopper_id: r.arm for r in results}


def _results(arm: str, n: int, dollars: float) -> list[AnalysisResult]:
    from tests.analysis.test_accuracy import result  # a hand-made analysis

    return [result(f"{arm}{i}", [], arm=arm, bedrock=True).model_copy(
        update={"cost": Cost(dollars=dollars, calls=1), "latency_ms": 100.0 + i})
        for i in range(n)]


def _scores(arm: str, within: int, n: int) -> list[Score]:
    return [Score(i, f"{arm}{i}", "Milk", "m", arm, date(2026, 3, 5), "purchased",
                  date(2026, 3, 5), 0 if i < within else 6, i < within, None)
            for i in range(n)]


def test_two_proportions_by_hand() -> None:
    # p1 = 40/100, p2 = 60/100, pooled 0.5: se = sqrt(0.25 * 0.02) = 0.0707, z = 2.8284
    test = two_proportions(40, 100, 60, 100)
    assert test.statistic == pytest.approx(2.8284, abs=1e-4)
    assert test.p_value == pytest.approx(0.004678, abs=1e-5)


@pytest.mark.parametrize(("within_b", "cost_b", "winner", "why"), [
    (70, 0.008, "B", "more accurate"),
    (70, 0.02, "A", "over $0.01"),
    (42, 0.008, "A", "not significantly more accurate"),
])
def test_the_winner_rule(within_b: int, cost_b: float, winner: str, why: str) -> None:
    results = _results("A", 100, 0.002) + _results("B", 100, cost_b)
    scores = _scores("A", 40, 100) + _scores("B", within_b, 100)
    report = ab_report(AB, results, scores)
    assert report.winner == winner and why in report.reason
    assert report.arms["A"].success_rate == 1.0 and report.arms["A"].dollars_per_shopper == 0.002
    assert report.arms["A"].median_latency_ms == pytest.approx(149.5)
    assert report.tests["abs_days_off"].p_value is not None
    assert report.to_dict()["arms"]["B"]["accuracy"]["scored"] == 100


def test_too_few_scored_predictions_keep_the_cheaper_arm() -> None:
    report = ab_report(AB, _results("A", 10, 0.002) + _results("B", 10, 0.004),
                       _scores("A", 1, 10) + _scores("B", 10, 10))
    assert report.winner == "A" and "fewer than 30" in report.reason


def test_history_keeps_the_arm_column(tmp_path: Path) -> None:
    import sqlite3

    from tests.analysis.test_accuracy import result

    history = AnalysisHistory(tmp_path / "h.sqlite")
    history.save(result("x", [], arm="B", bedrock=True))
    with sqlite3.connect(history.path) as db:
        assert db.execute("SELECT arm FROM analyses").fetchall() == [("B",)]
    assert history.rows()[0][1].created_at == datetime(2026, 3, 1, 23, tzinfo=UTC)
