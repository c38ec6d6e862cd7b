"""The fallback from the chain's released models: the timing model's next purchase per
category with its 80 % interval, the segment model's churn signal and value band.

Each shopper's model state is replayed from the same lake rows the summary came from,
basket by basket, through the feature state of `models.features` (the one implementation
the edge and training use): `ShopperState.add_trip`, then `PairState.add_purchase` per
category of the basket, as the edge does on every sale. The bundle is a verified release
bundle (`--bundle PATH --public-key PEM`): a bundle whose signature or files do not check
out is refused, never half-used. Household and lifestyle stay the rules' (no model of
ours infers them); a shopper the models cannot place gets the rules throughout.
"""

from __future__ import annotations

import argparse
import logging
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cloud_sync.analysis.schema import (
    INFERENCES_MAX,
    OPPORTUNITIES_MAX,
    CategoryForecast,
    ChurnRisk,
    Inference,
    Opportunity,
    RiskLevel,
    ShopperAnalysis,
    ValueBand,
)
from cloud_sync.analysis.summary import ShopperSummary
from models.datasets.lake import load_lake
from models.features.segments import ShopperState as TripState
from models.features.segments import raw_values, segment_features
from models.features.timing import PairState, apply_basket

if TYPE_CHECKING:
    from models.segments.serving import SegmentAssigner
    from models.timing.serving import TimingPredictor

logger = logging.getLogger(__name__)

# The forecast's confidence is the model's P(purchase within this many days of its median):
# the same ±2 days the accuracy job scores (accuracy.py).
CONFIDENCE_HALF_WIDTH_DAYS = 2.0
# A category the shopper will likely buy within the week (the timing model's urgency) is
# worth a reminder.
REMIND_URGENCY = 0.6
# Churn per segment (models/segments/naming.py): lapsed shoppers are the churn signal; the
# probabilities are coarse by design, the segment is the evidence.
SEGMENT_CHURN: dict[str, tuple[RiskLevel, float]] = {
    "hibernating": ("high", 0.8), "at risk": ("high", 0.65), "occasional": ("medium", 0.35),
    "new": ("medium", 0.3), "potential loyalists": ("low", 0.2), "loyal": ("low", 0.1),
    "champions": ("low", 0.05)}
SEGMENT_CONFIDENCE = 0.6  # a segment is a population rule on the shopper's own values


@dataclass
class ModelState:
    """What the edge keeps for the models about one shopper, replayed from the lake."""

    trips: TripState = field(default_factory=TripState)
    categories: dict[str, PairState] = field(default_factory=dict)


def model_states(rows: Any, categories: Mapping[str, str], *, now: datetime
                 ) -> dict[str, ModelState]:
    """Per pseudonym, the model state of its sales in `rows` (every store) up to `now`."""
    ds = load_lake(rows, categories=categories)
    if ds.category_names is None or ds.quantity is None or ds.price is None:
        return {}
    now_s = now.timestamp()
    # Per shopper, per basket: (ts, spend, units per category), then replayed oldest first.
    baskets: dict[int, dict[int, list[Any]]] = defaultdict(dict)
    for user, basket, ts, cat, qty, paid in zip(ds.user, ds.basket, ds.ts, ds.category,
                                                ds.quantity, ds.price, strict=True):
        if ts > now_s:
            continue
        b = baskets[int(user)].setdefault(int(basket), [float(ts), 0.0, defaultdict(float)])
        b[1] += float(paid)
        b[2][ds.category_names[int(cat)]] += float(qty)
    states = {}
    for user, by_index in baskets.items():
        state = states[ds.user_ids[user]] = ModelState()
        for ts, spend, units in sorted(by_index.values(), key=lambda b: b[0]):
            apply_basket(state.trips, state.categories, ts, spend, units)
    return states


class ModelFallback:
    """The released models and every shopper's state: the model-based analysis."""

    def __init__(self, version: str, states: Mapping[str, ModelState], now: datetime, *,
                 timing: TimingPredictor | None, segments: SegmentAssigner | None) -> None:
        self.version, self.states, self.now = version, states, now
        self.timing, self.segments = timing, segments

    @classmethod
    def load(cls, bundle: Path, public_key: Path, rows: Any, categories: Mapping[str, str],
             *, now: datetime) -> ModelFallback:
        from models.bundle.verify import verify_bundle
        from models.segments.serving import SegmentAssigner
        from models.timing.serving import TimingPredictor

        verified = verify_bundle(bundle, public_key)
        names = set(verified.files)
        timing = TimingPredictor.from_bundle(verified) if "timing.onnx" in names else None
        segments = SegmentAssigner.from_bundle(verified) if "segments.onnx" in names else None
        if timing is None and segments is None:
            raise ValueError(f"bundle {verified.version} has neither a timing nor a segment"
                             " model")
        return cls(verified.version, model_states(rows, categories, now=now), now,
                   timing=timing, segments=segments)

    def analysis(self, summary: ShopperSummary, rules: ShopperAnalysis
                 ) -> ShopperAnalysis | None:
        """The models' analysis of the shopper, the rules' where no model speaks; None when
        the models know nothing of this shopper (the caller keeps the rules)."""
        state = self.states.get(summary.shopper_id)
        if state is None or state.trips.trips == 0:
            return None
        now_ts = self.now.timestamp()
        forecasts, reminders = list(rules.forecasts), list(rules.opportunities)
        if self.timing is not None:
            forecasts, reminders = self._timing(summary, state, now_ts)
        churn, band, lifestyle = rules.churn_risk, rules.value_band, list(rules.lifestyle)
        if self.segments is not None:
            churn, band, segment = self._segment(summary, state, now_ts)
            lifestyle = [segment, *lifestyle][:INFERENCES_MAX]
        return ShopperAnalysis(forecasts=forecasts, household=rules.household,
                               lifestyle=lifestyle, churn_risk=churn, value_band=band,
                               opportunities=reminders[:OPPORTUNITIES_MAX])

    def _timing(self, summary: ShopperSummary, state: ModelState, now_ts: float
                ) -> tuple[list[CategoryForecast], list[Opportunity]]:
        from models.timing.predict import days_cdf

        assert self.timing is not None
        names = [c.category for c in summary.categories if c.category in state.categories]
        predicted = self.timing.predict([(state.categories[c], c) for c in names],
                                        state.trips, now_ts)
        quantiles = np.array([[p.low_days, p.days_until, p.high_days] for p in predicted])
        mid = quantiles[:, 1] if len(predicted) else np.zeros(0)
        near = (days_cdf(quantiles, mid + CONFIDENCE_HALF_WIDTH_DAYS)
                - days_cdf(quantiles, mid - CONFIDENCE_HALF_WIDTH_DAYS)) if len(mid) else mid
        tomorrow = summary.as_of + timedelta(days=1)
        forecasts, reminders = [], []
        for name, p, confidence in zip(names, predicted, near.tolist(), strict=True):
            when = max(tomorrow, self._day(p.days_until))
            start = max(tomorrow, self._day(p.low_days))
            forecasts.append(CategoryForecast(
                category=name, next_purchase_date=when, confidence=round(confidence, 2),
                window_start=min(start, when), window_end=max(when, self._day(p.high_days)),
                reason=f"Timing model {self.version}: in {p.days_until:.1f} days, 80% between"
                       f" {p.low_days:.1f} and {p.high_days:.1f}."[:200]))
            if p.urgency >= REMIND_URGENCY:
                reminders.append(Opportunity(
                    category=name, confidence=round(p.urgency, 2),
                    action=f"Remind: {p.urgency:.0%} likely to buy it within a week."))
        reminders.sort(key=lambda o: -o.confidence)
        return forecasts, reminders

    def _day(self, days: float) -> Any:
        return (self.now + timedelta(days=days)).date()

    def _segment(self, summary: ShopperSummary, state: ModelState, now_ts: float
                 ) -> tuple[ChurnRisk, ValueBand, Inference]:
        assert self.segments is not None
        [name] = self.segments.assign([state.trips], now_ts)
        level, probability = SEGMENT_CHURN.get(name, ("medium", 0.5))
        recency, _, trips, _, value = raw_values(segment_features(state.trips, now_ts))
        t = self.segments.thresholds
        band: ValueBand = ("top" if name == "champions" and value >= t.value_q75 else
                           "high" if value >= t.value_q75 else
                           "medium" if value >= t.value_median else "low")
        churn = ChurnRisk(level=level, probability=probability, reason=(
            f"Segment model {self.version}: '{name}'; last visit {recency:.1f} days ago, "
            f"{trips:.1f} visits a month.")[:200])
        segment = Inference(label=f"segment: {name}", confidence=SEGMENT_CONFIDENCE, reason=(
            f"Segment model {self.version}: {value:.0f} spent a month (chain median "
            f"{t.value_median:.0f}).")[:200])
        return churn, band, segment


def add_bundle_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--bundle", type=Path, metavar="PATH",
                   help="a release bundle (directory or .tar.gz): the fallback uses its timing"
                        " and segment models (default: rules only)")
    p.add_argument("--public-key", type=Path, metavar="PEM",
                   help="the fleet public key the bundle must verify against")


def models_from_args(args: argparse.Namespace, rows: Any, categories: Mapping[str, str],
                     now: datetime) -> ModelFallback | None:
    if args.bundle is None:
        return None
    if args.public_key is None:
        raise ValueError("--bundle needs --public-key PEM (the bundle is verified first)")
    return ModelFallback.load(args.bundle, args.public_key, rows, categories, now=now)
