"""Store-wide, non-personal answers for kiosks and displays."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from edge_agent.api.auth import Caller, allow
from edge_agent.api.routes import API_PREFIX
from edge_agent.api.state import ServingState, serving_state
from edge_agent.queries.trending import trending_products
from models.events import utc_now

router = APIRouter(prefix=API_PREFIX, tags=["store"])
State = Annotated[ServingState, Depends(serving_state)]


class TrendingItem(BaseModel):
    product_id: str
    name: str | None
    category: str | None
    location: str | None = Field(description='where it is stocked, in words ("Aisle 3")')
    baskets: int
    lift: float


class TrendingResponse(BaseModel):
    window_hours: float
    items: list[TrendingItem]


@router.get("/trending", response_model=TrendingResponse,
            summary="Products selling faster than usual in this store right now")
async def trending(state: State,
             _caller: Annotated[Caller, Depends(allow("display", "kiosk", "staff"))],
             window_hours: Annotated[float, Query(gt=0, le=72)] = 3.0,
             limit: Annotated[int, Query(ge=1, le=100)] = 10) -> TrendingResponse:
    def compute() -> list[TrendingItem]:
        found = trending_products(state.reads.get(), utc_now(), window_hours, limit)
        where = state.store_map.category_location
        return [TrendingItem(**asdict(item), location=where(item.category)) for item in found]

    items = state.cache.get_or_compute(("trending", window_hours, limit),
                                       state.settings.trending_cache_s, compute)
    return TrendingResponse(window_hours=window_hours, items=items)
