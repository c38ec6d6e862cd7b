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
# Product ids per stock query, under SQLite's bound-parameter limit.
_CHUNK = 500


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


# The active catalog per database file, as of a catalog version (migration 4 bumps it on
# any change to `products`): (version, product id → Product with in_stock=True).
_catalogs: dict[str, tuple[int, dict[str, Product]]] = {}


def products_by_id(conn: sqlite3.Connection, product_ids: Iterable[str]) -> dict[str, Product]:
    """The active products among `product_ids`, with their stock as of now."""
    catalog = _catalog(conn)
    ids = [pid for pid in dict.fromkeys(product_ids) if pid in catalog]
    empty = _out_of_stock(conn, ids)
    return {pid: catalog[pid] if pid not in empty else _without_stock(catalog[pid])
            for pid in ids}


def active_products(conn: sqlite3.Connection) -> dict[str, Product]:
    """Every active product (stock not read: `in_stock` is True on all; ask
    :func:`products_by_id` for the ones you show). Shared per database: do not change it."""
    return _catalog(conn)


def _catalog(conn: sqlite3.Connection) -> dict[str, Product]:
    path = next(row[2] for row in conn.execute("PRAGMA database_list") if row[1] == "main")
    (version,) = conn.execute("SELECT version FROM catalog_version").fetchone()
    cached = _catalogs.get(path)
    if cached is not None and cached[0] == version:
        return cached[1]
    products = {row[0]: Product(row[0], row[1], row[2], row[3],
                                frozenset(json.loads(row[4] or "[]")),
                                frozenset(json.loads(row[5] or "[]")), True)
                for row in conn.execute("SELECT product_id, name, category, price, allergens,"
                                        " diets FROM products WHERE active")}
    if path:  # an in-memory database has no name to share its catalog under
        _catalogs[path] = (version, products)
    return products


def _out_of_stock(conn: sqlite3.Connection, product_ids: list[str]) -> set[str]:
    """Those of `product_ids` with a shelf whose latest reading is empty."""
    empty: set[str] = set()
    for start in range(0, len(product_ids), _CHUNK):
        chunk = product_ids[start:start + _CHUNK]
        marks = ",".join("?" * len(chunk))
        empty.update(row[0] for row in conn.execute(
            f"SELECT DISTINCT product_id FROM shelf_state WHERE product_id IN ({marks})"
            " AND COALESCE(quantity, weight_g) <= 0", chunk))
    return empty


def _without_stock(product: Product) -> Product:
    return Product(product.product_id, product.name, product.category, product.price,
                   product.allergens, product.diets, in_stock=False)
