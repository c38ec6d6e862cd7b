"""A shopper's own answers, for kiosks and staff: lookup by loyalty number, purchase timing
per category, the shopping list. Personal answers need the shopper's consent (403
`consent_required` without it); an unknown shopper is a 404 `unknown_customer`."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from edge_agent.api.auth import Caller, allow
from edge_agent.api.personal import (
    ShopperId,
    consenting_profile,
    current_models,
    shopper_errors,
    timings,
)
from edge_agent.api.routes import API_PREFIX
from edge_agent.api.state import ServingState, serving_state
from edge_agent.shoppers import profile as profiles
from edge_agent.shoppers.timing import shopping_list
from models.events import utc_now
from models.timing.predict import URGENCY_WINDOW_DAYS

router = APIRouter(prefix=f"{API_PREFIX}/shoppers", tags=["shoppers"])
State = Annotated[ServingState, Depends(serving_state)]
KioskOrStaff = Annotated[Caller, Depends(allow("kiosk", "staff"))]


class ShopperRef(BaseModel):
    customer_id: str = Field(description="the shopper's opaque id: what every other shopper"
                                         " endpoint takes (never the loyalty system's id)")


_URGENCY = f"chance (0-1) that the shopper buys the category within {URGENCY_WINDOW_DAYS:.0f} days"


class CategoryTimingOut(BaseModel):
    category: str
    purchases: int
    last_purchase: datetime
    typical_gap_days: float | None
    days_until: float
    low_days: float
    high_days: float
    urgency: float = Field(description=_URGENCY)
    predicted_date: datetime


class TimingResponse(BaseModel):
    customer_id: str
    model_version: str
    categories: list[CategoryTimingOut]


class ListItemOut(BaseModel):
    product_id: str
    name: str
    category: str
    status: Literal["urgent", "upcoming"]
    reason: str
    predicted_date: datetime
    earliest_date: datetime
    latest_date: datetime
    confidence: float = Field(description=_URGENCY)
    in_stock: bool


class ShoppingListResponse(BaseModel):
    customer_id: str
    model_version: str
    items: list[ListItemOut]


@router.get("/lookup", response_model=ShopperRef, summary="Find a shopper by loyalty number",
            responses={404: {"description": "no shopper with that number"}})
async def lookup(state: State, _caller: KioskOrStaff,
           loyalty_number: Annotated[str, Query(min_length=4, max_length=32,
                                                pattern=r"^[0-9A-Za-z-]+$")]) -> ShopperRef:
    with shopper_errors():
        return ShopperRef(customer_id=profiles.device_ref_for_loyalty_number(
            state.reads.get(), loyalty_number))


@router.get("/{customer_id}/purchase-timing", response_model=TimingResponse,
            summary="Predicted days until the shopper's next purchase, per category",
            responses={403: {"description": "no consent"}, 404: {"description": "unknown"}})
async def purchase_timing(customer_id: ShopperId, state: State,
                    _caller: KioskOrStaff) -> TimingResponse:
    models = current_models(state)
    profile = consenting_profile(state, customer_id)
    found = await timings(state, profile, models, utc_now())
    return TimingResponse(customer_id=customer_id, model_version=models.version, categories=[
        CategoryTimingOut(category=t.category, purchases=t.purchases,
                          last_purchase=t.last_purchase, typical_gap_days=t.typical_gap_days,
                          days_until=round(t.days_until, 2), low_days=round(t.low_days, 2),
                          high_days=round(t.high_days, 2), urgency=round(t.urgency, 3),
                          predicted_date=t.predicted_date) for t in found])


@router.get("/{customer_id}/shopping-list", response_model=ShoppingListResponse,
            summary="What the shopper is about to run out of: urgent and upcoming items",
            responses={403: {"description": "no consent"}, 404: {"description": "unknown"}})
async def get_shopping_list(customer_id: ShopperId, state: State,
                      _caller: KioskOrStaff) -> ShoppingListResponse:
    models = current_models(state)
    conn = state.reads.get()
    profile = consenting_profile(state, customer_id)
    items = []
    for item in shopping_list(conn, profile, await timings(state, profile, models,
                                                           utc_now())):
        t = item.timing
        items.append(ListItemOut(
            product_id=item.product.product_id, name=item.product.name,
            category=item.product.category, status=item.status, reason=item.reason,  # type: ignore[arg-type]
            predicted_date=t.predicted_date, earliest_date=t.date_in(t.low_days),
            latest_date=t.date_in(t.high_days), confidence=round(t.urgency, 3),
            in_stock=item.product.in_stock))
    return ShoppingListResponse(customer_id=customer_id, model_version=models.version,
                                items=items)
