"""Writing the demo catalog and shoppers into the store database (idempotent: upserts by key)."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlite_utils

from edge_agent.demo.catalog import Product
from edge_agent.demo.shoppers import Shopper
from models.events import format_ts

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SeedResult:
    products: int
    customers: int


def product_row(product: Product) -> dict[str, Any]:
    return {
        "product_id": product.product_id,
        "name": product.name,
        "brand": product.brand,
        "department": product.department,
        "category": product.category,
        "price": product.price,
        "size": product.size,
        "temperature_zone": product.temperature_zone,
        "allergens": json.dumps(list(product.allergens)),
        "diets": json.dumps(list(product.diets)),
        "active": 1,
    }


def customer_row(shopper: Shopper) -> dict[str, Any]:
    return {
        "customer_id": shopper.customer_id,
        "loyalty_number": shopper.loyalty_number,
        "household_size": shopper.household_size,
        "consent_personalization": int(shopper.consent_personalization),
        "consent_staff_assist": int(shopper.consent_staff_assist),
        "dietary_restrictions": json.dumps(list(shopper.dietary_restrictions)),
        "allergens": json.dumps(list(shopper.allergens)),
        "created_at": format_ts(shopper.created_at),
    }


def seed_demo_data(db: sqlite_utils.Database, catalog: Sequence[Product],
                   shoppers: Sequence[Shopper]) -> SeedResult:
    """Upsert every product and customer in one transaction; running it again changes nothing."""
    with db.atomic():
        db["products"].upsert_all((product_row(p) for p in catalog), pk="product_id")
        db["customers"].upsert_all((customer_row(s) for s in shoppers), pk="customer_id")
    logger.info("seeded %d products and %d customers", len(catalog), len(shoppers))
    return SeedResult(products=len(catalog), customers=len(shoppers))
