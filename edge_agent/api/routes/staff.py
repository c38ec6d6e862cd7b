"""Staff handheld endpoints."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from edge_agent.api.auth import Caller, allow
from edge_agent.api.personal import ShopperId, device_profile, shopper_errors
from edge_agent.api.routes import API_PREFIX
from edge_agent.api.state import ServingState, serving_state
from edge_agent.queries.restock import restock_alerts
from edge_agent.shoppers import profile as profiles
from edge_agent.shoppers.insights import shopper_insights
from models.events import utc_now

router = APIRouter(prefix=f"{API_PREFIX}/staff", tags=["staff"])
State = Annotated[ServingState, Depends(serving_state)]


class RestockAlertOut(BaseModel):
    shelf_id: str
    location: str | None = Field(description='where the shelf is, in words ("Aisle 3"): '
                                             "the layout's shelf, or where its product's "
                                             "category is stocked")
    product_id: str
    name: str | None
    category: str | None
    level: float
    capacity: int
    fill_ratio: float
    severity: Literal["empty", "low"]
    since: str


class RestockAlertsResponse(BaseModel):
    alerts: list[RestockAlertOut]


@router.get("/restock-alerts", response_model=RestockAlertsResponse,
            summary="Shelves that are empty or running low, emptiest first")
async def get_restock_alerts(state: State,
                       _caller: Annotated[Caller, Depends(allow("staff"))],
                       below: Annotated[float, Query(ge=0, le=1, description=(
                           "alert at or below this share of capacity"))] = 0.2,
                       limit: Annotated[int, Query(ge=1, le=500)] = 50) -> RestockAlertsResponse:
    alerts = restock_alerts(state.reads.get(), below, limit)
    where = state.store_map.locate
    return RestockAlertsResponse(alerts=[
        RestockAlertOut(**asdict(a), location=where(a.shelf_id, a.category)) for a in alerts])


class InsightsOut(BaseModel):
    customer_id: str
    segment: str | None
    visits: int
    visits_per_week: float | None
    average_basket: float | None
    last_visit: datetime | None
    favourite_categories: list[str]
    dietary_restrictions: list[str]
    allergens: list[str]
    household_size: int | None
    model_version: str | None


@router.get("/shoppers/{customer_id}/insights", response_model=InsightsOut,
            summary="A shopper's segment, habits and diet, for staff helping them",
            responses={403: {"description": "the shopper has not consented to staff assist"},
                       404: {"description": "unknown shopper"}})
async def get_insights(customer_id: ShopperId, state: State,
                       _caller: Annotated[Caller, Depends(allow("staff"))]) -> InsightsOut:
    profile = device_profile(state, customer_id)
    with shopper_errors():
        profiles.require_staff_assist(profile)
    models = state.models.current
    found = await state.model_calls.run(lambda: shopper_insights(profile, models, utc_now()))
    return InsightsOut(**{**asdict(found), "customer_id": customer_id,
                          "favourite_categories": list(found.favourite_categories),
                          "dietary_restrictions": list(found.dietary_restrictions),
                          "allergens": list(found.allergens)},
                       model_version=models.version if models else None)
