"""Product answers: finding a product by name, similar products (a substitute for an empty
shelf, an alternative that suits a diet)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, Field

from edge_agent.api.auth import Caller, NotPermitted, allow
from edge_agent.api.errors import UnknownProduct
from edge_agent.api.personal import device_profile
from edge_agent.api.routes import API_PREFIX
from edge_agent.api.state import ServingState, serving_state
from edge_agent.queries.product_search import MAX_QUERY_CHARS, search_products
from edge_agent.shoppers.catalog import Product
from edge_agent.shoppers.similar import ProductNotFound, similar_products
from models.events import MAX_ID_LENGTH

router = APIRouter(prefix=f"{API_PREFIX}/products", tags=["products"])
State = Annotated[ServingState, Depends(serving_state)]


class ProductOut(BaseModel):
    product_id: str
    name: str
    category: str
    price: float | None
    in_stock: bool

    @classmethod
    def of(cls, product: Product) -> ProductOut:
        return cls(product_id=product.product_id, name=product.name, category=product.category,
                   price=product.price, in_stock=product.in_stock)


class FoundProduct(ProductOut):
    location: str | None = Field(description='where it is stocked, in words ("Aisle 3")')


class SearchResponse(BaseModel):
    query: str
    items: list[FoundProduct]


class SimilarResponse(BaseModel):
    product: ProductOut
    similar: list[ProductOut]
    filtered_for_diet: bool


@router.get("/search", response_model=SearchResponse,
            summary="Find products by name, category or code; where each is stocked")
async def search(state: State,
                 _caller: Annotated[Caller, Depends(allow("display", "kiosk", "staff"))],
                 q: Annotated[str, Query(min_length=1, max_length=MAX_QUERY_CHARS,
                                         description='words of the name ("semi skimmed"), '
                                                     'a category ("milk") or a product code')],
                 limit: Annotated[int, Query(ge=1, le=50)] = 10) -> SearchResponse:
    found = search_products(state.reads.get(), q, limit)
    where = state.store_map.category_location
    return SearchResponse(query=q, items=[
        FoundProduct(**ProductOut.of(p).model_dump(), location=where(p.category))
        for p in found])


@router.get("/{product_id}/similar", response_model=SimilarResponse,
            summary="Products like this one: same category, close in price, in stock first",
            responses={403: {"description": "a display key naming a shopper"},
                       404: {"description": "unknown product or shopper"}})
async def get_similar(product_id: Annotated[str, Path(min_length=1, max_length=MAX_ID_LENGTH)],
                state: State,
                caller: Annotated[Caller, Depends(allow("display", "kiosk", "staff"))],
                limit: Annotated[int, Query(ge=1, le=50)] = 8,
                customer_id: Annotated[str | None, Query(
                    min_length=1, max_length=MAX_ID_LENGTH,
                    description="apply this shopper's diet and allergies (with consent): their"
                                " opaque id, from /v1/shoppers/lookup")] = None,
                ) -> SimilarResponse:
    conn = state.reads.get()
    restrictions: tuple[str, ...] = ()
    allergens: tuple[str, ...] = ()
    if customer_id is not None and caller.role == "display":
        # A public screen must learn nothing of a shopper's health (a filtered answer would
        # tell whom it was filtered for), so it may not name one at all.
        raise NotPermitted("customer_id: a display key cannot ask on a shopper's behalf",
                           field="customer_id")
    if customer_id is not None:
        profile = device_profile(state, customer_id)
        if profile.consent_personalization:
            restrictions, allergens = profile.dietary_restrictions, profile.allergens
    try:
        target, found = similar_products(conn, product_id, limit, restrictions, allergens)
    except ProductNotFound:
        raise UnknownProduct(f"no product {product_id!r} in this store's catalog") from None
    return SimilarResponse(product=ProductOut.of(target),
                           similar=[ProductOut.of(p) for p in found],
                           filtered_for_diet=bool(restrictions or allergens))
