"""Purchase timing per category and the shopping list built from it."""

from __future__ import annotations

import math
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from edge_agent.modeling.loaded import LoadedModels
from edge_agent.shoppers import words
from edge_agent.shoppers.catalog import Product, active_products, products_by_id
from edge_agent.shoppers.profile import Profile

if TYPE_CHECKING:
    from models.features.timing import PairState
    from models.timing.predict import TimingPrediction

DAY_S = 86400.0
# On the list when the predicted median is within this many days ("upcoming"), or the
# shopper's own habit is overdue; urgent when the model's urgency (the chance of buying the
# category within the coming week) reaches this, or it is due today, or overdue: "you buy
# milk about every 6 days; it's been 7".
UPCOMING_DAYS = 7.0
URGENT_AT = 0.75
DUE_NOW_DAYS = 0.5
# Overdue counts in cycles of the shopper's own habit (see `overdue`): a whole cycle since
# the last purchase is due; a habit missed this many times running has been dropped, or
# moved to another shop, and leaves the list.
DUE_AFTER_CYCLES = 1.0
DROPPED_AFTER_CYCLES = 5.0
# A category bought once gives no cycle to speak of; the list needs a habit.
MIN_PURCHASES_FOR_LIST = 2


@dataclass(frozen=True)
class CategoryTiming:
    as_of: datetime
    category: str
    purchases: int
    last_purchase: datetime
    days_since_last: float
    typical_gap_days: float | None
    days_until: float
    low_days: float
    high_days: float
    urgency: float

    def date_in(self, days: float) -> datetime:
        return self.as_of + timedelta(days=days)

    @property
    def predicted_date(self) -> datetime:
        return self.date_in(self.days_until)


@dataclass(frozen=True)
class ListItem:
    product: Product
    timing: CategoryTiming
    status: str  # "urgent" or "upcoming"
    reason: str


def timed_categories(profile: Profile, models: LoadedModels) -> list[tuple[PairState, str]]:
    """The shopper's (category state, category) pairs the timing model predicts, if any."""
    if profile.features is None or models.timing is None:
        return []
    return [(state, name) for name, state in sorted(profile.features.categories.items())
            if state.count > 0]


def timings_of(pairs: list[tuple[PairState, str]], predictions: list[TimingPrediction],
               now: datetime) -> list[CategoryTiming]:
    """The timing model's `predictions` for `pairs`, soonest first."""
    now_s = now.timestamp()
    out = []
    for (state, name), prediction in zip(pairs, predictions, strict=True):
        out.append(CategoryTiming(
            as_of=now, category=name, purchases=state.count,
            last_purchase=datetime.fromtimestamp(state.last_ts, UTC),
            days_since_last=max(now_s - state.last_ts, 0.0) / DAY_S,
            typical_gap_days=state.gap_mean if state.n_gaps else None,
            days_until=prediction.days_until, low_days=prediction.low_days,
            high_days=prediction.high_days, urgency=prediction.urgency))
    return sorted(out, key=lambda t: (t.days_until, -t.urgency, t.category))


def shopping_list(conn: sqlite3.Connection, profile: Profile,
                  timings: list[CategoryTiming]) -> list[ListItem]:
    """The categories due soon or overdue (of `timings`, from :func:`timings_of`),
    most overdue first, each as the product this shopper usually buys there."""
    timings = [t for t in timings if t.purchases >= MIN_PURCHASES_FOR_LIST and (
        t.days_until <= UPCOMING_DAYS or DUE_AFTER_CYCLES <= overdue(t) < DROPPED_AFTER_CYCLES)]
    if not timings or profile.features is None:
        return []
    usual = _usual_products(conn, profile, {t.category for t in timings})
    items = []
    for timing in sorted(timings, key=lambda t: (-overdue(t), -t.urgency, t.category)):
        product = usual.get(timing.category)
        if product is None:
            continue
        urgent = (timing.urgency >= URGENT_AT or timing.days_until <= DUE_NOW_DAYS
                  or overdue(timing) >= DUE_AFTER_CYCLES)
        items.append(ListItem(product, timing, "urgent" if urgent else "upcoming",
                              _reason(product.category, timing)))
    return items


def overdue(timing: CategoryTiming) -> float:
    """How far through their own cycle the shopper is: days since the last purchase over the
    usual days between purchases (1 is due today, 4 is three cycles late). The list is in
    this order, most overdue first: cheese bought every 3 days and last 14 days ago comes
    before milk bought weekly and last 6 days ago, whatever the model thinks of the lapse.
    Without a usual gap, the model's prediction stands in."""
    gap = timing.typical_gap_days
    if gap is None or math.isnan(gap) or gap <= 0:
        return timing.days_since_last / max(timing.days_since_last + timing.days_until,
                                            DUE_NOW_DAYS)
    return timing.days_since_last / gap


def _usual_products(conn: sqlite3.Connection, profile: Profile,
                    categories: set[str]) -> dict[str, Product]:
    """Per category of `categories`, the product the shopper bought most often (then most
    recently) that still suits their diet and allergies, with its stock."""
    assert profile.features is not None
    # Chosen from the catalog, and only then the stock of the few chosen: a shopper's
    # history has hundreds of products, the list a handful (stock does not change the
    # choice: the list shows an empty shelf, it does not hide it).
    catalog = active_products(conn)
    best: dict[str, tuple[tuple[int, float], Product]] = {}
    for product_id, history in profile.features.baskets.items.items():
        product = catalog.get(product_id)
        if product is None or product.category not in categories or not product.suits(
                profile.dietary_restrictions, profile.allergens):
            continue
        rank = (history.count, history.last_t)
        if product.category not in best or rank > best[product.category][0]:
            best[product.category] = (rank, product)
    stocked = products_by_id(conn, [product.product_id for _, product in best.values()])
    return {category: stocked[product.product_id] for category, (_, product) in best.items()
            if product.product_id in stocked}


def _reason(category: str, timing: CategoryTiming) -> str:
    noun = words.category_noun(category)
    since = words.ago(round(timing.days_since_last))
    if timing.typical_gap_days is None or math.isnan(timing.typical_gap_days):
        return f"You last bought {noun} {since}."
    gap = max(1, round(timing.typical_gap_days))
    return f"You buy {noun} about {words.every(gap)}; last bought {since}."
