"""The analysis without Bedrock, honest about what it is.

Used when Bedrock is not configured, fails, answers malformed twice, the breaker is open or
the day's budget is spent; the result says `producer: "fallback"` and why. With a release
bundle (`model_fallback.py`) the chain's timing and segment models answer, and `model_id`
is the bundle's version; without one, or for a shopper the models cannot place, the rules
below are the last resort (`model_id` None, `detail` saying "rules"). The rules:
next purchase = last purchase + median gap (tomorrow when already overdue), confidence from
the gaps' regularity and their number; churn from the time since the last visit against the
usual gap between visits; value band from weekly spend against the population's quantiles.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from cloud_sync.analysis.schema import (
    OPPORTUNITIES_MAX,
    AnalysisResult,
    Arm,
    CategoryForecast,
    ChurnRisk,
    Cost,
    FallbackReason,
    Inference,
    Opportunity,
    ShopperAnalysis,
    ValueBand,
)
from cloud_sync.analysis.summary import ShopperSummary, summary_digest

if TYPE_CHECKING:
    from cloud_sync.analysis.model_fallback import ModelFallback

# Gaps needed before a rhythm is fully trusted: four gaps are five purchases.
FULL_TRUST_GAPS = 4
CONFIDENCE_FLOOR, CONFIDENCE_CEILING = 0.05, 0.95
# A category this far past its usual gap is worth a reminder.
OVERDUE_RATIO = 1.2
# Churn: time since the last visit in usual visit gaps.
CHURN_MEDIUM_RATIO, CHURN_HIGH_RATIO = 1.5, 3.0
# Units per basket that suggest a household's size; rough, hence a low confidence.
LARGE_BASKET_UNITS, SMALL_BASKET_UNITS = 25.0, 8.0
RULE_CONFIDENCE = 0.35


@dataclass(frozen=True)
class ValueBands:
    """Weekly-spend cut points: below `medium` is low; from `top` on is top."""

    medium: float = 30.0  # defaults for a shopper analysed alone: a modest weekly shop
    high: float = 60.0
    top: float = 120.0

    @classmethod
    def from_summaries(cls, summaries: Iterable[ShopperSummary]) -> ValueBands:
        """Median, 75th and 90th percentiles of the population's weekly spend."""
        spend = sorted(s.household.weekly_spend for s in summaries)
        if not spend:
            return cls()

        def q(p: float) -> float:
            return spend[min(len(spend) - 1, int(p * len(spend)))]
        return cls(q(0.5), q(0.75), q(0.9))

    def band(self, weekly_spend: float) -> ValueBand:
        if weekly_spend >= self.top:
            return "top"
        if weekly_spend >= self.high:
            return "high"
        return "medium" if weekly_spend >= self.medium else "low"


def _clamp(x: float) -> float:
    return round(min(CONFIDENCE_CEILING, max(CONFIDENCE_FLOOR, x)), 2)


def fallback_analysis(summary: ShopperSummary, bands: ValueBands | None = None
                      ) -> ShopperAnalysis:
    bands = bands or ValueBands()
    forecasts, opportunities = [], []
    for c in summary.categories:
        if c.median_gap_days is None or c.median_gap_days <= 0:
            continue  # one purchase (or one day) is no rhythm
        gaps = c.purchases - 1
        regularity = 1.0 / (1.0 + (c.gap_variation if c.gap_variation is not None else 1.0))
        confidence = _clamp(regularity * min(1.0, gaps / FULL_TRUST_GAPS))
        due_in = c.median_gap_days - c.last_purchase_days_ago
        when = summary.as_of + timedelta(days=max(1, math.ceil(due_in)))
        # The window: one standard deviation of the gaps either side (at least a day),
        # never before tomorrow.
        spread = timedelta(days=max(1, round(c.median_gap_days * (
            c.gap_variation if c.gap_variation is not None else 1.0))))
        start = max(summary.as_of + timedelta(days=1), when - spread)
        forecasts.append(CategoryForecast(
            category=c.category, next_purchase_date=when, confidence=confidence,
            window_start=start, window_end=when + spread,
            reason=f"Every {c.median_gap_days:g} days (median of {gaps} gaps); "
                   f"last {c.last_purchase_days_ago:g} days ago."))
        if c.last_purchase_days_ago >= OVERDUE_RATIO * c.median_gap_days:
            opportunities.append(Opportunity(
                category=c.category, confidence=confidence,
                action=f"Remind: usually bought every {c.median_gap_days:g} days, "
                       f"last {c.last_purchase_days_ago:g} days ago."))
    visits = summary.visits
    # The usual gap between visits, not visits over the whole span: a shopper who stopped
    # coming would otherwise look merely infrequent.
    usual_gap = visits.median_gap_days or (
        7.0 / visits.visits_per_week if visits.visits_per_week > 0 else 7.0)
    ratio = visits.days_since_last_visit / usual_gap
    level = ("high" if ratio >= CHURN_HIGH_RATIO else
             "medium" if ratio >= CHURN_MEDIUM_RATIO else "low")
    churn = ChurnRisk(level=level, probability=_clamp((ratio - 1.0) / 4.0),
                      reason=f"Last visit {visits.days_since_last_visit:g} days ago; "
                             f"usually every {usual_gap:.1f} days.")
    units = summary.household.mean_units_per_basket
    size = ("larger household" if units >= LARGE_BASKET_UNITS else
            "small household" if units <= SMALL_BASKET_UNITS else "mid-sized household")
    household = [Inference(label=size, confidence=RULE_CONFIDENCE,
                           reason=f"{units:g} units per basket on average.")]
    lifestyle = [Inference(
        label="frequent top-up shopper" if visits.visits_per_week >= 2.5 else "planned shopper",
        confidence=RULE_CONFIDENCE,
        reason=f"{visits.visits_per_week:g} visits a week, mostly {visits.usual_weekday} "
               f"{visits.usual_hour_band}.")]
    opportunities.sort(key=lambda o: -o.confidence)
    return ShopperAnalysis(forecasts=forecasts, household=household, lifestyle=lifestyle,
                           churn_risk=churn, value_band=bands.band(summary.household.weekly_spend),
                           opportunities=opportunities[:OPPORTUNITIES_MAX])


def fallback_result(summary: ShopperSummary, reason: FallbackReason, *,
                    detail: str | None = None, bands: ValueBands | None = None,
                    cost: Cost | None = None, now: datetime | None = None,
                    arm: Arm | None = None, models: ModelFallback | None = None
                    ) -> AnalysisResult:
    """The models' analysis when a bundle is given and knows the shopper, else the rules'."""
    analysis = fallback_analysis(summary, bands)
    by_models = models.analysis(summary, analysis) if models is not None else None
    how = f"models {models.version}" if by_models is not None and models else "rules"
    return AnalysisResult(
        shopper_id=summary.shopper_id, producer="fallback", fallback_reason=reason,
        model_id=models.version if by_models is not None and models else None,
        detail=f"{how}: {detail}" if detail else how, analysis=by_models or analysis,
        cost=cost or Cost(), summary_digest=summary_digest(summary),
        created_at=now or datetime.now(UTC), as_of=summary.as_of, arm=arm)
