"""A store with enough in it to look like one: the demo catalog, a family whose list is 15
items long (all of them due), a shopper whose two stops are a metre apart, 50 shelves
running low, sales this hour. Everything goes through the real paths (the catalog into
SQLite as the back office loads it, sales and shelf readings over MQTT)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from edge_agent.demo.catalog import Product, generate_catalog
from edge_agent.queries.trending import MIN_TRENDING_BUYERS
from tests.api.conftest import days_ago, seed_catalog
from tests.ingestion.conftest import (
    STORE,
    Publisher,
    count,
    pos_event,
    shelf_event,
    wait_until,
)

# The family's habits: one product of each of these categories, bought weekly for four
# weeks; the list is then 15 items long, over most of the store.
FAMILY_CATEGORIES = ("fruit", "vegetables", "bread", "milk", "cheese", "eggs", "butter",
                     "yogurt", "pasta and rice", "cereal", "coffee", "baby", "pet food",
                     "frozen pizza", "ice cream")
FAMILY = {"customer_id": "C-FAMILY", "loyalty_number": "1000000015", "household_size": 4,
          "consent_personalization": 1, "consent_staff_assist": 1}
# Flowers by the door and the grab-and-go chiller beside them: two stops a metre apart.
# (The demo catalog sells no flowers; the layout has a stand for them.)
TULIPS = Product("TULIPS", "Tulips bunch of 10", "Bloom", "flowers", "flowers", 4.0,
                 "bunch of 10", "ambient", (), (), meat=False)
NEIGHBOURS_CATEGORIES = ("flowers", "sandwiches")
NEIGHBOURS = {"customer_id": "C-DOORWAY", "loyalty_number": "1000000016", "household_size": 1,
              "consent_personalization": 1, "consent_staff_assist": 0}
WEEKS_OF_HISTORY = (28, 21, 14, 7)
# The family shops on two days a week, their products split between them.
FAMILY_SHOPPING_DAYS = 2
# Shelves reported low for the staff handheld: a busy afternoon.
LOW_SHELVES = 50


@dataclass(frozen=True)
class SeededStore:
    catalog: list[Product]
    family: dict[str, Product]  # category -> the product the family buys
    neighbours: dict[str, Product]


def _first_of(catalog: list[Product], categories: tuple[str, ...]) -> dict[str, Product]:
    found: dict[str, Product] = {}
    for product in catalog:
        if product.category in categories and product.category not in found:
            found[product.category] = product
    return found


def seed_store(db_path: Path, publisher: Publisher) -> SeededStore:
    """The demo catalog and shoppers, and four weeks of the family's and the neighbours'
    shopping (the family's products staggered over the week, as a household tops up)."""
    import sqlite_utils

    catalog = [*generate_catalog(0), TULIPS]
    seed_catalog(db_path)  # the small test catalog and its shoppers too (C-WEEKLY, ...)
    db = sqlite_utils.Database(db_path)
    db["products"].upsert_all(
        [{"product_id": p.product_id, "name": p.name, "category": p.category, "price": p.price,
          "allergens": json.dumps(list(p.allergens)), "diets": json.dumps(list(p.diets))}
         for p in catalog], pk="product_id")
    db["customers"].upsert_all([FAMILY, NEIGHBOURS], pk="customer_id")
    db.close()
    family = _first_of(catalog, FAMILY_CATEGORIES)
    neighbours = _first_of(catalog, NEIGHBOURS_CATEGORIES)
    before = count(db_path, "SELECT count(*) FROM events")
    sales = 0
    for offset in range(FAMILY_SHOPPING_DAYS):  # last bought 7 or 8 days ago: all due
        products = list(family.values())[offset::FAMILY_SHOPPING_DAYS]
        for age in WEEKS_OF_HISTORY:
            _buy(publisher, FAMILY["customer_id"], age + offset, products)
            sales += 1
    for age in WEEKS_OF_HISTORY:
        _buy(publisher, NEIGHBOURS["customer_id"], age, list(neighbours.values()))
        sales += 1
    wait_until(lambda: count(db_path, "SELECT count(*) FROM events") == before + sales,
               what="the seeded sales")
    return SeededStore(catalog, family, neighbours)


def _buy(publisher: Publisher, customer_id: str, age_days: float,
         products: list[Product]) -> None:
    publisher.event(pos_event(
        customer_id=customer_id, ts=days_ago(age_days),
        total=round(sum(p.price for p in products), 2),
        items=[{"product_id": p.product_id, "quantity": 1, "unit_price": p.price}
               for p in products]))


def run_shelves_low(db_path: Path, publisher: Publisher, catalog: list[Product],
                    shelves: int = LOW_SHELVES) -> None:
    """`shelves` sensor shelves (ids of their own, as the simulator's) empty or nearly."""
    before = count(db_path, "SELECT count(*) FROM shelf_state")
    for i, product in enumerate(catalog[::len(catalog) // shelves][:shelves]):
        publisher.publish(f"stores/{STORE}/shelf/SH-{product.product_id}",
                          shelf_event(product_id=product.product_id, quantity=i % 3,
                                      capacity=24))
    wait_until(lambda: count(db_path, "SELECT count(*) FROM shelf_state") == before + shelves,
               what="the shelf readings")


def sell_now(db_path: Path, publisher: Publisher, products: list[Product]) -> None:
    """A few baskets per product (enough buyers to trend), this minute: what a display
    shows as selling now."""
    before = count(db_path, "SELECT count(*) FROM events")
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    for repeat, product in enumerate(products):
        for _ in range(MIN_TRENDING_BUYERS + repeat % 3):
            publisher.event(pos_event(ts=now, total=product.price, customer_id=None,
                                      items=[{"product_id": product.product_id, "quantity": 1,
                                              "unit_price": product.price}]))
    sold = sum(MIN_TRENDING_BUYERS + repeat % 3 for repeat in range(len(products)))
    wait_until(lambda: count(db_path, "SELECT count(*) FROM events") == before + sold,
               what="this hour's sales")
