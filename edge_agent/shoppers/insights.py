"""What a member of staff may see about a shopper who asked for help (with consent)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime

from edge_agent.modeling.loaded import LoadedModels
from edge_agent.shoppers import words
from edge_agent.shoppers.profile import Profile

DAY_S = 86400.0
TOP_CATEGORIES = 5


@dataclass(frozen=True)
class Insights:
    customer_id: str
    segment: str | None  # None without a segment model or before the first sale
    visits: int
    visits_per_week: float | None
    average_basket: float | None
    last_visit: datetime | None
    favourite_categories: tuple[str, ...]  # as read in a sentence: "baby products"
    dietary_restrictions: tuple[str, ...]
    allergens: tuple[str, ...]
    household_size: int | None


def shopper_insights(profile: Profile, models: LoadedModels | None, now: datetime) -> Insights:
    features = profile.features
    if features is None or features.trips.trips == 0:
        return Insights(profile.customer_id, None, 0, None, None, None, (),
                        profile.dietary_restrictions, profile.allergens, profile.household_size)
    trips = features.trips
    segment = None
    if models is not None and models.segments is not None:
        (segment,) = models.segments.assign([trips], now.timestamp())
    weeks = (now.timestamp() - trips.first_ts) / (7 * DAY_S)
    favourites = sorted(features.categories.items(), key=lambda kv: (-kv[1].count, kv[0]))
    return Insights(
        customer_id=profile.customer_id, segment=segment, visits=trips.trips,
        visits_per_week=round(trips.trips / weeks, 2) if weeks >= 1 else None,
        average_basket=round(trips.spend / trips.trips, 2),
        last_visit=None if math.isnan(trips.last_ts) else datetime.fromtimestamp(
            trips.last_ts, UTC),
        favourite_categories=tuple(words.category_noun(name)
                                   for name, _ in favourites[:TOP_CATEGORIES]),
        dietary_restrictions=profile.dietary_restrictions, allergens=profile.allergens,
        household_size=profile.household_size)
