"""Staff handheld endpoints.

A shopper's insights (staff-assist consent required) carry the chain's newest analysis of
them, sent down by the cloud (edge_agent/insights), and a history of past analyses; neither
names the shopper's customer id or pseudonym.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from cloud_sync.analysis.schema import (
    CategoryForecast,
    ChurnRisk,
    FallbackReason,
    Inference,
    Opportunity,
    Producer,
    ValueBand,
)
from edge_agent.api.auth import Caller, allow
from edge_agent.api.personal import ShopperId, device_profile, shopper_errors
from edge_agent.api.routes import API_PREFIX
from edge_agent.api.state import ServingState, serving_state
from edge_agent.insights.store import HISTORY_MAX, StoredInsight, insights_of
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


class AnalysisOut(BaseModel):
    producer: Producer = Field(description="`bedrock`: the chain's Bedrock analysis;"
                                           " `fallback`: the chain's own models")
    model_id: str | None = Field(description="the Bedrock model that answered; for a"
                                             " fallback, the release of the chain's models"
                                             " it came from (none: rules)")
    fallback_reason: FallbackReason | None
    created_at: datetime = Field(description="when the analysis was made")
    received_at: datetime = Field(description="when it reached this store")
    next_purchases: list[CategoryForecast] = Field(
        description="per category: next purchase date, confidence and reason, soonest first")
    household: list[Inference]
    lifestyle: list[Inference]
    churn_risk: ChurnRisk
    value_band: ValueBand
    opportunities: list[Opportunity]

    @classmethod
    def of(cls, found: StoredInsight) -> AnalysisOut:
        analysis = found.analysis
        return cls(producer=found.producer,  # type: ignore[arg-type]
                   model_id=found.model_id,
                   fallback_reason=found.fallback_reason,  # type: ignore[arg-type]
                   created_at=found.created_at, received_at=found.received_at,
                   next_purchases=sorted(analysis.forecasts,
                                         key=lambda f: (f.next_purchase_date, -f.confidence)),
                   household=list(analysis.household), lifestyle=list(analysis.lifestyle),
                   churn_risk=analysis.churn_risk, value_band=analysis.value_band,
                   opportunities=list(analysis.opportunities))


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
    analysis: AnalysisOut | None = Field(
        description="the chain's newest analysis of the shopper; null when none has come")


class InsightsHistoryOut(BaseModel):
    customer_id: str
    analyses: list[AnalysisOut] = Field(description="newest first")


_CONSENT_RESPONSES = {403: {"description": "the shopper has not consented to staff assist"},
                      404: {"description": "unknown shopper"}}


@router.get("/shoppers/{customer_id}/insights", response_model=InsightsOut,
            summary="A shopper's segment, habits, diet and the chain's newest analysis,"
                    " for staff helping them", responses=_CONSENT_RESPONSES)
async def get_insights(customer_id: ShopperId, state: State,
                       _caller: Annotated[Caller, Depends(allow("staff"))]) -> InsightsOut:
    profile = device_profile(state, customer_id)
    with shopper_errors():
        profiles.require_staff_assist(profile)
    models = state.models.current
    found = await state.model_calls.run(lambda: shopper_insights(profile, models, utc_now()))
    analyses = insights_of(state.reads.get(), profile.customer_id, 1)
    return InsightsOut(**{**asdict(found), "customer_id": customer_id,
                          "favourite_categories": list(found.favourite_categories),
                          "dietary_restrictions": list(found.dietary_restrictions),
                          "allergens": list(found.allergens)},
                       model_version=models.version if models else None,
                       analysis=AnalysisOut.of(analyses[0]) if analyses else None)


@router.get("/shoppers/{customer_id}/insights/history", response_model=InsightsHistoryOut,
            summary="The chain's past analyses of a shopper, newest first",
            responses=_CONSENT_RESPONSES)
async def get_insights_history(customer_id: ShopperId, state: State,
                               _caller: Annotated[Caller, Depends(allow("staff"))],
                               limit: Annotated[int, Query(ge=1, le=HISTORY_MAX)] = 10
                               ) -> InsightsHistoryOut:
    profile = device_profile(state, customer_id)
    with shopper_errors():
        profiles.require_staff_assist(profile)
    found = insights_of(state.reads.get(), profile.customer_id, limit)
    return InsightsHistoryOut(customer_id=customer_id,
                              analyses=[AnalysisOut.of(item) for item in found])
