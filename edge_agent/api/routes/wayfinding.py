"""The store map and shortest walks: for a list of products, or for a shopper's list."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from edge_agent.api.auth import Caller, allow
from edge_agent.api.personal import ShopperId, consenting_profile, current_models, timings
from edge_agent.api.routes import API_PREFIX
from edge_agent.api.state import ServingState, serving_state
from edge_agent.shoppers.timing import shopping_list
from edge_agent.wayfinding import StoreMap
from models.events import MAX_ID_LENGTH, utc_now
from store_layouts import Route

router = APIRouter(prefix=API_PREFIX, tags=["wayfinding"])
State = Annotated[ServingState, Depends(serving_state)]
NOT_IN_CATALOG = "not in this store's catalog"
# A trolley of 200 different products is already a big shop; beyond that is a mistake.
MAX_ROUTE_ITEMS = 200


class RouteItemOut(BaseModel):
    item_id: str
    category: str
    shelf_id: str


class RouteStopOut(BaseModel):
    number: int
    node: str
    x: float
    y: float
    temperature: str
    shelves: list[str]
    location: str | None = Field(description='where the stop is, in words ("Aisle 3")')
    items: list[RouteItemOut]
    distance_from_previous_m: float


class NotFoundOut(BaseModel):
    item_id: str
    category: str | None
    reason: str


class RouteOut(BaseModel):
    layout_id: str
    entrance: str | None
    checkout: str | None
    stops: list[RouteStopOut]
    distance_m: float
    walking_time_s: float
    polyline: list[tuple[float, float]]
    not_found: list[NotFoundOut]
    optimal: bool
    planning_ms: float


class RouteRequest(BaseModel):
    product_ids: Annotated[list[Annotated[str, Field(min_length=1, max_length=MAX_ID_LENGTH)]],
                           Field(min_length=1, max_length=MAX_ROUTE_ITEMS)]
    avoid_congestion: bool = True


def _route_out(store_map: StoreMap, route: Route, unknown: list[str]) -> RouteOut:
    data: dict[str, Any] = route.to_dict()
    for stop in data["stops"]:
        stop["location"] = next(filter(None, map(store_map.shelf_location, stop["shelves"])),
                                None)
    data["not_found"] = [*data["not_found"], *({"item_id": pid, "category": None,
                                                "reason": NOT_IN_CATALOG} for pid in unknown)]
    return RouteOut(**data)


def plan_for_products(state: ServingState, product_ids: list[str],
                      avoid_congestion: bool = True) -> RouteOut:
    ids = list(dict.fromkeys(product_ids))
    conn = state.reads.get()
    marks = ",".join("?" * len(ids))
    categories = dict(conn.execute(
        f"SELECT product_id, category FROM products WHERE product_id IN ({marks})", ids))
    items = [(pid, categories[pid]) for pid in ids if pid in categories]
    route = state.store_map.plan(items, avoid_congestion=avoid_congestion)
    return _route_out(state.store_map, route, [pid for pid in ids if pid not in categories])


@router.get("/store/map", summary="The store's map: outline, fixtures, shelves, doors, zones")
async def store_map(state: State,
              _caller: Annotated[Caller, Depends(allow("display", "kiosk", "staff"))]
              ) -> dict[str, Any]:
    return state.store_map.map_payload()


@router.post("/routes", response_model=RouteOut,
             summary="The shortest walk from an entrance past every product to a checkout, "
                     "frozen goods last")
async def route_for_products(body: RouteRequest, state: State,
                       _caller: Annotated[Caller, Depends(allow("kiosk", "staff"))]) -> RouteOut:
    return plan_for_products(state, body.product_ids, body.avoid_congestion)


@router.get("/shoppers/{customer_id}/shopping-list/route", response_model=RouteOut,
            summary="The walk to collect the shopper's shopping list",
            responses={403: {"description": "no consent"}, 404: {"description": "unknown"}})
async def route_for_shopping_list(
        customer_id: ShopperId,
        state: State, _caller: Annotated[Caller, Depends(allow("kiosk", "staff"))]) -> RouteOut:
    models = current_models(state)
    conn = state.reads.get()
    profile = consenting_profile(state, customer_id)
    items = shopping_list(conn, profile, await timings(state, profile, models, utc_now()))
    if not items:
        return _route_out(state.store_map, state.store_map.plan([]), [])
    return plan_for_products(state, [item.product.product_id for item in items])
