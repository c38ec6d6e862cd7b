"""Content for a digital display in a zone. Nothing personal is shown unless a shopper who
consented to personalization was seen in the zone in the last minutes; even then the
display shows suggestions only, never who they are for."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Path
from pydantic import BaseModel

from edge_agent.api.auth import Caller, allow
from edge_agent.api.errors import ServingError
from edge_agent.api.model_calls import ModelsTooSlow
from edge_agent.api.personal import ranking
from edge_agent.api.routes import API_PREFIX
from edge_agent.api.state import ServingState, serving_state
from edge_agent.queries.trending import trending_products
from edge_agent.shoppers import profile as profiles
from edge_agent.shoppers.recommend import personal_recommendations
from models.events import MAX_ID_LENGTH, format_ts, utc_now

router = APIRouter(prefix=f"{API_PREFIX}/displays", tags=["displays"])
State = Annotated[ServingState, Depends(serving_state)]
# A shopper seen in the zone this recently is taken to be standing there.
PRESENCE_WINDOW = timedelta(minutes=2)
TRENDING_ITEMS = 6
FOR_YOU_ITEMS = 3
# Store-wide trending is read deeper than shown, then kept to the zone's categories.
TRENDING_DEPTH = 200
TRENDING_WINDOW_HOURS = 3.0


class UnknownZone(ServingError):
    status_code = 404
    code = "unknown_zone"


class DisplayItem(BaseModel):
    product_id: str
    name: str | None
    category: str | None
    location: str | None = None  # where it is stocked, in words ("Aisle 3")


class DisplayContent(BaseModel):
    zone_id: str
    zone_name: str
    categories: list[str]
    trending: list[DisplayItem]
    for_you: list[DisplayItem]
    personalized: bool


@router.get("/{zone_id}/content", response_model=DisplayContent,
            summary="What a display in this zone shows now",
            responses={404: {"description": "no such zone in this store's layout"}})
async def display_content(zone_id: Annotated[str, Path(min_length=1, max_length=MAX_ID_LENGTH)],
                    state: State,
                    _caller: Annotated[Caller, Depends(allow("display", "kiosk", "staff"))]
                    ) -> DisplayContent:
    categories = state.store_map.zone_categories(zone_id)
    if categories is None:
        raise UnknownZone(f"zone {zone_id!r} is not in this store's layout")
    wanted = set(categories)
    # One store-wide ranking, shared by every zone's displays; each keeps its categories.
    store_trending = state.cache.get_or_compute(
        ("display-trending",), state.settings.trending_cache_s,
        lambda: trending_products(state.reads.get(), utc_now(), TRENDING_WINDOW_HOURS,
                                  TRENDING_DEPTH))
    where = state.store_map.category_location
    trending = [DisplayItem(product_id=t.product_id, name=t.name, category=t.category,
                            location=where(t.category))
                for t in store_trending if t.category in wanted][:TRENDING_ITEMS]
    for_you = await _for_present_shopper(state, zone_id, wanted)
    return DisplayContent(zone_id=zone_id, zone_name=state.store_map.layout.zones[zone_id].name,
                          categories=list(categories), trending=trending, for_you=for_you,
                          personalized=bool(for_you))


async def _for_present_shopper(state: ServingState, zone_id: str,
                         categories: set[str]) -> list[DisplayItem]:
    models = state.models.current
    if models is None or models.ranker is None:
        return []
    conn = state.reads.get()
    since = format_ts(utc_now() - PRESENCE_WINDOW)
    row = conn.execute(
        "SELECT p.customer_id FROM presence p JOIN customers c USING (customer_id)"
        " WHERE p.zone_id = ? AND p.ts >= ? AND c.consent_personalization"
        " ORDER BY p.ts DESC LIMIT 1", (zone_id, since)).fetchone()
    if row is None:
        return []
    profile = profiles.load_profile(conn, row[0])
    if profile.features is None:
        return []
    now = utc_now()
    try:
        ranked = await ranking(state, profile, models, now)
    except ModelsTooSlow:
        return []  # the zone's trending products still show
    found = personal_recommendations(conn, profile, ranked, now, 50)
    where = state.store_map.category_location
    return [DisplayItem(product_id=r.product.product_id, name=r.product.name,
                        category=r.product.category, location=where(r.product.category))
            for r in found if r.product.category in categories][:FOR_YOU_ITEMS]
