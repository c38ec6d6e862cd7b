"""Recommendations: the ranker's candidates for a shopper, then the store's rules — diet and
allergens, nothing out of stock, variety across categories — and a reason for each."""

from __future__ import annotations

import math
import sqlite3
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol

import numpy as np

from edge_agent.shoppers import words
from edge_agent.shoppers.catalog import Product, products_by_id
from edge_agent.shoppers.profile import Profile
from models.events import format_ts
from models.features.nbr_state import ShopperState

Context = Literal["kiosk", "display", "handheld"]
DAY_S = 86400.0
# How many ranked candidates to read before the rules filter them: the rules may drop many
# (a vegan shopper, an empty dairy aisle) and there must still be enough left.
CANDIDATES = 60
# Variety: a list of five yogurts helps nobody.
MAX_PER_CATEGORY = 2
# Popularity window for shoppers who get non-personal results.
POPULAR_DAYS = 7
# A suggestion is something to pick up: never what the shopper already bought today. A
# rolling day rather than the calendar's, since the store's time zone is not known here
# (and a product bought last night is in the cupboard just the same).
BOUGHT_RECENTLY_S = DAY_S


class Ranker(Protocol):
    """What the edge uses of the next-basket ranker (`models.nbr.serve.NbrServingModel`):
    its recommendation in steps, so the ONNX scoring can run wherever the caller runs it."""

    def candidates_of(self, state: ShopperState, now: float
                      ) -> tuple[np.ndarray, np.ndarray]: ...

    def score(self, features: np.ndarray) -> np.ndarray: ...

    def top(self, items: np.ndarray, scores: np.ndarray, k: int
            ) -> list[tuple[str, float]]: ...


@dataclass(frozen=True)
class Recommendation:
    product: Product
    score: float
    reason: str
    tags: tuple[str, ...]


def personal_recommendations(conn: sqlite3.Connection, profile: Profile,
                             ranked: list[tuple[str, float]], now: datetime,
                             limit: int) -> list[Recommendation]:
    """`ranked` (the ranker's best `CANDIDATES`) through the rules, with a reason for each."""
    assert profile.features is not None
    state = profile.features.baskets
    products = products_by_id(conn, [pid for pid, _ in ranked])
    just_bought = bought_recently(profile, now)
    chosen = []
    for product_id, score in ranked:
        product = products.get(product_id)
        if product is None or product_id in just_bought or not _allowed(product, profile):
            continue
        history = state.items.get(product_id)
        reason, tags = _why(product, history, now)
        chosen.append(Recommendation(product, round(score, 4), reason, tags))
    return _diverse(chosen, limit)


def popular_products(conn: sqlite3.Connection, now: datetime) -> list[tuple[str, float]]:
    """What sells most in this store lately: (product id, baskets relative to the top)."""
    since = format_ts(datetime.fromtimestamp(now.timestamp() - POPULAR_DAYS * DAY_S,
                                             now.tzinfo))[:10]
    rows = conn.execute(
        "SELECT product_id, SUM(baskets) AS baskets FROM product_daily_sales WHERE day >= ?"
        " GROUP BY product_id ORDER BY baskets DESC, product_id LIMIT ?",
        (since, CANDIDATES * 2)).fetchall()
    top = max((r[1] for r in rows), default=1)
    return [(r[0], r[1] / top) for r in rows]


def popular_recommendations(conn: sqlite3.Connection, popular: list[tuple[str, float]],
                            limit: int, profile: Profile | None = None,
                            now: datetime | None = None) -> list[Recommendation]:
    """Non-personal: `popular` (from :func:`popular_products`) that is in stock (diet, and
    not what they bought today, still apply when the shopper has consented to us knowing
    it)."""
    products = products_by_id(conn, [pid for pid, _ in popular])
    consented = profile if profile is not None and profile.consent_personalization else None
    just_bought = bought_recently(consented, now)
    chosen = []
    for product_id, share in popular:
        product = products.get(product_id)
        if product is None or not product.in_stock or product_id in just_bought:
            continue
        if profile is not None and profile.consent_personalization and not _allowed(
                product, profile):
            continue
        chosen.append(Recommendation(product, round(share, 4),
                                     "Popular in this store this week", ("popular",)))
    return _diverse(chosen, limit)


def bought_recently(profile: Profile | None, now: datetime | None) -> set[str]:
    """Products the shopper bought within :data:`BOUGHT_RECENTLY_S` of `now`."""
    if profile is None or profile.features is None or now is None:
        return set()
    since = now.timestamp() - BOUGHT_RECENTLY_S
    return {pid for pid, history in profile.features.baskets.items.items()
            if math.isfinite(history.last_t) and history.last_t >= since}


def _allowed(product: Product, profile: Profile) -> bool:
    return product.in_stock and product.suits(profile.dietary_restrictions, profile.allergens)


def _why(product: Product, history: object, now: datetime) -> tuple[str, tuple[str, ...]]:
    if history is None:
        return ("Shoppers with baskets like yours often buy this", ("new-for-you",))
    count = history.count  # type: ignore[attr-defined]
    first_t, last_t = history.first_t, history.last_t  # type: ignore[attr-defined]
    since_days = round((now.timestamp() - last_t) / DAY_S) if math.isfinite(last_t) else None
    if count >= 2 and math.isfinite(first_t) and last_t > first_t:
        gap = max(1, round((last_t - first_t) / DAY_S / (count - 1)))
        due = since_days is not None and since_days >= gap
        when = f"last bought {words.ago(since_days or 0)}"
        return (f"You buy this about {words.every(gap)}; {when}",
                ("usual", "due") if due else ("usual",))
    return ("You bought this before", ("bought-before",))


def _diverse(candidates: list[Recommendation], limit: int) -> list[Recommendation]:
    per_category: dict[str, int] = {}
    chosen = []
    for item in candidates:
        seen = per_category.get(item.product.category, 0)
        if seen >= MAX_PER_CATEGORY:
            continue
        per_category[item.product.category] = seen + 1
        chosen.append(item)
        if len(chosen) == limit:
            break
    return chosen
