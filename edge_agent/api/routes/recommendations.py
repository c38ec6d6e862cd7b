"""Recommendations for a shopper, per context (kiosk, display, handheld).

With consent and a ranker, they are personal; otherwise (no consent, no sales yet, no ranker
in the loaded bundle) they are the store's popular products, and `personalized` says so.
An unknown shopper is a 404."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from edge_agent.api.auth import Caller, allow
from edge_agent.api.model_calls import ModelsTooSlow
from edge_agent.api.personal import ShopperId, device_profile, popular, ranking
from edge_agent.api.routes import API_PREFIX
from edge_agent.api.state import ServingState, serving_state
from edge_agent.shoppers.recommend import (
    Context,
    personal_recommendations,
    popular_recommendations,
)
from models.events import utc_now

router = APIRouter(prefix=f"{API_PREFIX}/shoppers", tags=["shoppers"])
State = Annotated[ServingState, Depends(serving_state)]
# How many items each kind of screen shows by default.
DEFAULT_LIMIT: dict[str, int] = {"kiosk": 10, "display": 4, "handheld": 6}


class RecommendedItem(BaseModel):
    product_id: str
    name: str
    category: str
    price: float | None
    score: float
    reason: str
    tags: list[str]
    model_version: str | None


class RecommendationsResponse(BaseModel):
    customer_id: str
    context: Context
    personalized: bool
    # Why the answer is not personal although it could be (the models were too slow).
    degraded: str | None = None
    items: list[RecommendedItem]


@router.get("/{customer_id}/recommendations", response_model=RecommendationsResponse,
            summary="Recommendations for a shopper; non-personal without consent",
            responses={404: {"description": "unknown shopper"}})
async def get_recommendations(
        customer_id: ShopperId,
        state: State,
        _caller: Annotated[Caller, Depends(allow("kiosk", "display", "staff"))],
        context: Context = "kiosk",
        limit: Annotated[int | None, Query(ge=1, le=50)] = None) -> RecommendationsResponse:
    conn = state.reads.get()
    profile = device_profile(state, customer_id)
    models = state.models.current
    count = limit or DEFAULT_LIMIT[context]
    now = utc_now()
    personal = (profile.consent_personalization and models is not None
                and models.ranker is not None and profile.features is not None)
    found = []
    degraded = None
    if personal:
        assert models is not None
        try:
            ranked = await ranking(state, profile, models, now)
            found = personal_recommendations(conn, profile, ranked, now, count)
        except ModelsTooSlow as exc:  # favourites now rather than suggestions too late
            personal, degraded = False, exc.message
    if len(found) < count:
        # Too few the ranker knows (a new catalog, an old model): top up with favourites.
        shown = {r.product.product_id for r in found}
        found += [r for r in popular_recommendations(conn, popular(state), count, profile,
                                                       now)
                  if r.product.product_id not in shown][:count - len(found)]
    version = models.version if personal and models is not None else None
    return RecommendationsResponse(
        customer_id=customer_id, context=context, personalized=personal, degraded=degraded,
        items=[RecommendedItem(product_id=r.product.product_id, name=r.product.name,
                               category=r.product.category, price=r.product.price,
                               score=r.score, reason=r.reason, tags=list(r.tags),
                               model_version=None if "popular" in r.tags else version)
               for r in found])
