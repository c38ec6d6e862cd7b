"""Products similar to a given one: the same category, close in price, suitable for the
shopper's diet when one is given, in stock first."""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Iterable

from edge_agent.shoppers.catalog import Product, products_by_id

# Candidates read from the category before ranking; categories hold tens to a few hundred.
MAX_CANDIDATES = 500


class ProductNotFound(LookupError):
    pass


def similar_products(conn: sqlite3.Connection, product_id: str, limit: int,
                     restrictions: Iterable[str] = (), allergens: Iterable[str] = ()
                     ) -> tuple[Product, list[Product]]:
    found = products_by_id(conn, [product_id])
    if product_id not in found:
        raise ProductNotFound(product_id)
    target = found[product_id]
    ids = [row[0] for row in conn.execute(
        "SELECT product_id FROM products WHERE category = ? AND product_id != ? AND active"
        " LIMIT ?", (target.category, product_id, MAX_CANDIDATES))]
    restrictions, allergens = tuple(restrictions), tuple(allergens)
    candidates = [p for p in products_by_id(conn, ids).values()
                  if p.suits(restrictions, allergens)]

    def distance(p: Product) -> tuple[bool, float, str]:
        gap = abs(math.log(p.price / target.price)) if target.price and p.price else math.inf
        return (not p.in_stock, gap, p.product_id)

    return target, sorted(candidates, key=distance)[:limit]
