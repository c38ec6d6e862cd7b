"""Staff handheld endpoints."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from edge_agent.api.auth import Caller, allow
from edge_agent.api.routes import API_PREFIX
from edge_agent.api.state import ServingState, serving_state
from edge_agent.queries.restock import restock_alerts

router = APIRouter(prefix=f"{API_PREFIX}/staff", tags=["staff"])
State = Annotated[ServingState, Depends(serving_state)]


class RestockAlertOut(BaseModel):
    shelf_id: str
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
def get_restock_alerts(state: State,
                       _caller: Annotated[Caller, Depends(allow("staff"))],
                       below: Annotated[float, Query(ge=0, le=1, description=(
                           "alert at or below this share of capacity"))] = 0.2,
                       limit: Annotated[int, Query(ge=1, le=500)] = 50) -> RestockAlertsResponse:
    alerts = restock_alerts(state.reads.get(), below, limit)
    return RestockAlertsResponse(alerts=[RestockAlertOut(**asdict(a)) for a in alerts])
