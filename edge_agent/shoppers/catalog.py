"""Product facts a personal answer needs: names, categories, diet and allergen labels,
and whether the shelf has any left."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass

# Diet restriction → the label a product must carry to suit it.
DIET_LABELS = {"vegetarian": "vegetarian", "vegan": "vegan", "gluten_free": "gluten_free",
               "lactose_free": "lactose_free"}


@dataclass(frozen=True)
class Product:
    product_id: str
    name: str
    category: str
    price: float | None
    allergens: frozenset[str]
    diets: frozenset[str]
    in_stock: bool  # False only when the latest shelf reading says it is empty

    def suits(self, restrictions: Iterable[str], allergens: Iterable[str]) -> bool:
        if self.allergens & set(allergens):
            return False
        return all(DIET_LABELS.get(r, r) in self.diets for r in restrictions)


def products_by_id(conn: sqlite3.Connection, product_ids: Iterable[str]) -> dict[str, Product]:
    ids = list(dict.fromkeys(product_ids))
    found: dict[str, Product] = {}
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        marks = ",".join("?" * len(chunk))
        for row in conn.execute(
                "SELECT p.product_id, p.name, p.category, p.price, p.allergens, p.diets,"
                " NOT EXISTS (SELECT 1 FROM shelf_state s WHERE s.product_id = p.product_id"
                "             AND COALESCE(s.quantity, s.weight_g) <= 0) AS in_stock"
                f" FROM products p WHERE p.product_id IN ({marks}) AND p.active", chunk):
            found[row[0]] = Product(row[0], row[1], row[2], row[3],
                                    frozenset(json.loads(row[4] or "[]")),
                                    frozenset(json.loads(row[5] or "[]")), bool(row[6]))
    return found
