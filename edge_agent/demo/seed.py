"""Writing the demo catalog and shoppers into the store database (idempotent: upserts by key)."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlite_utils

from edge_agent.demo.catalog import Product
from edge_agent.demo.shoppers import Shopper
from edge_agent.masterdata import apply_records

logger = logging.getLogger(__name__)
# The demo's records are the oldest version: an operator's import (versioned by its time)
# always wins over them.
DEMO_VERSION = 1


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
        "allergens": list(product.allergens),
        "diets": list(product.diets),
    }


def customer_row(shopper: Shopper) -> dict[str, Any]:
    return {
        "customer_id": shopper.customer_id,
        "loyalty_number": shopper.loyalty_number,
        "household_size": shopper.household_size,
        "consent_personalization": shopper.consent_personalization,
        "consent_staff_assist": shopper.consent_staff_assist,
        "dietary_restrictions": list(shopper.dietary_restrictions),
        "allergens": list(shopper.allergens),
    }


def seed_demo_data(db: sqlite_utils.Database, catalog: Sequence[Product],
                   shoppers: Sequence[Shopper]) -> SeedResult:
    """Apply the demo catalog and shoppers through the master-data path, as an operator's
    import would; running it again changes nothing."""
    for kind, rows in (("catalog", [product_row(p) for p in catalog]),
                       ("customers", [customer_row(s) for s in shoppers])):
        digest = hashlib.sha256(json.dumps(rows, sort_keys=True).encode()).hexdigest()
        apply_records(db.conn, kind, list(enumerate(rows, start=1)), version=DEMO_VERSION,
                      batch_id=f"demo:{kind}:{digest}")
    logger.info("seeded %d products and %d customers", len(catalog), len(shoppers))
    return SeedResult(products=len(catalog), customers=len(shoppers))
