"""Accuracy scoring on a hand-built history: two analyses, lake purchases after them, and
every number computed by hand in the comments."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from cloud_sync.analysis.accuracy import AccuracyStore, by_group, purchase_days
from cloud_sync.analysis.cost import HAIKU_4_5
from cloud_sync.analysis.history import AnalysisHistory
from cloud_sync.analysis.schema import (
    AnalysisResult,
    CategoryForecast,
    ChurnRisk,
    ShopperAnalysis,
)
from tests.analysis.conftest import CATALOG, sale, shopper

AS_OF = date(2026, 3, 1)


def forecast(category: str, day: int, window: tuple[int, int] | None = None
             ) -> CategoryForecast:
    start, end = (date(2026, 3, window[0]), date(2026, 3, window[1])) if window else (None,
                                                                                       None)
    return CategoryForecast(category=category, next_purchase_date=date(2026, 3, day),
                            confidence=0.5, reason="hand-made", window_start=start,
                            window_end=end)


def result(who: str, forecasts: list[CategoryForecast], *, arm: str, bedrock: bool
           ) -> AnalysisResult:
    analysis = ShopperAnalysis(
        forecasts=forecasts, household=[], lifestyle=[], value_band="medium",
        churn_risk=ChurnRisk(level="low", probability=0.1, reason="hand-made"),
        opportunities=[])
    return AnalysisResult(
        shopper_id=shopper(who), producer="bedrock" if bedrock else "fallback",
        model_id=HAIKU_4_5 if bedrock else None, fallback_reason=None if bedrock else "failed",
        analysis=analysis, summary_digest="d", as_of=AS_OF, arm=arm,  # type: ignore[arg-type]
        created_at=datetime(2026, 3, 1, 23, tzinfo=UTC))


def bought(who: str, day: int, product: str) -> dict[str, object]:
    return sale(who, datetime(2026, 3, day, 10, tzinfo=UTC), {product: 1.0})


@pytest.fixture
def store(tmp_path: Path) -> AccuracyStore:
    history = AnalysisHistory(tmp_path / "history.sqlite")
    history.save(result("ann", [
        forecast("Milk", 5, (4, 6)),  # bought 03-06: +1, within, covered
        forecast("Bread", 3),  # bought 03-08: +5, not within, no window
        forecast("Coffee", 10, (8, 12)),  # never bought; lake to 03-20: missed, not covered
        forecast("Fruit & Vegetables", 19, (15, 25)),  # 03-20 is 1 day past: pending
    ], arm="A", bedrock=True))
    history.save(result("ben", [
        forecast("Milk", 7, (5, 9)),  # bought 03-04: -3, not within, not covered
        forecast("Bread", 2),  # bought 03-01 (the analysis day: ignored) and 03-02: 0
    ], arm="B", bedrock=False))
    return AccuracyStore(history)


ROWS = [bought("ann", 6, "p-milk"), bought("ann", 8, "p-bread"), bought("ann", 28, "p-apple"),
        bought("ann", 1, "p-coffee"),  # before the analysis: not an outcome
        bought("ben", 4, "p-milk"), bought("ben", 1, "p-bread"), bought("ben", 2, "p-bread"),
        bought("ben", 20, "p-milk")]


def test_scores_on_a_hand_built_history(store: AccuracyStore) -> None:
    purchases = purchase_days(ROWS, CATALOG)
    assert purchases[(shopper("ben"), "Bread")] == [date(2026, 3, 1), date(2026, 3, 2)]
    assert store.score(purchases, observed_until=date(2026, 3, 20)) == (5, 1)
    groups = by_group(store.scores())
    haiku = groups[(HAIKU_4_5, "A")]
    assert (haiku.scored, haiku.purchased, haiku.missed) == (3, 2, 1)
    assert haiku.within_share == pytest.approx(1 / 3, abs=1e-4)  # milk only, of 3
    assert haiku.mean_abs_days_off == 3.0 and haiku.median_abs_days_off == 3.0  # (1 + 5) / 2
    assert haiku.mean_days_off == 3.0
    assert (haiku.coverage, haiku.coverage_n) == (0.5, 2)  # milk in, coffee out
    fallback = groups[("fallback", "B")]
    assert (fallback.scored, fallback.purchased, fallback.missed) == (2, 2, 0)
    assert fallback.within_share == 0.5 and fallback.mean_abs_days_off == 1.5  # (3 + 0) / 2
    assert fallback.mean_days_off == -1.5 and (fallback.coverage, fallback.coverage_n) == (0.0, 1)
    coffee = next(s for s in store.scores() if s.category == "Coffee")
    assert coffee.status == "missed" and coffee.days_off is None and coffee.covered is False


def test_a_score_is_final_and_pending_ones_are_scored_later(store: AccuracyStore) -> None:
    purchases = purchase_days(ROWS, CATALOG)
    assert store.score(purchases, observed_until=date(2026, 3, 20)) == (5, 1)
    assert store.score(purchases, observed_until=date(2026, 3, 20)) == (0, 1)
    # A day later the fruit's ±2 days have passed without a purchase: a miss, its window
    # (to 03-25) not over yet, so its coverage is unknown.
    assert store.score(purchases, observed_until=date(2026, 3, 21)) == (1, 0)
    fruit = next(s for s in store.scores() if s.category == "Fruit & Vegetables")
    assert (fruit.status, fruit.within, fruit.covered) == ("missed", False, None)
    # The bought-later fruit (03-28) does not reopen a final score.
    assert store.score(purchases, observed_until=date(2026, 3, 30)) == (0, 0)
    assert len(store.scores()) == 6
