"""Product facts a personal answer needs: names, categories, diet and allergen labels,
and whether the shelf has any left."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TypeVar

from edge_agent.storage.migrations import empty_shelf

V = TypeVar("V")
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


# Per database file, as of its catalog and stock versions (migrations 4 and 11 bump them on
# any change to `products`, and when a shelf empties or is refilled): the active products
# (with in_stock=True), and the products with an empty shelf.
_catalogs: dict[str, tuple[int, dict[str, Product]]] = {}
_empty_shelves: dict[str, tuple[int, frozenset[str]]] = {}


def products_by_id(conn: sqlite3.Connection, product_ids: Iterable[str]) -> dict[str, Product]:
    """The active products among `product_ids`, with their stock as of now."""
    path, catalog_version, stock_version = _versions(conn)
    catalog = _catalog(conn, path, catalog_version)
    empty = _out_of_stock(conn, path, stock_version)
    return {pid: catalog[pid] if pid not in empty else _without_stock(catalog[pid])
            for pid in dict.fromkeys(product_ids) if pid in catalog}


def active_products(conn: sqlite3.Connection) -> dict[str, Product]:
    """Every active product (stock not read: `in_stock` is True on all; ask
    :func:`products_by_id` for the ones you show). Shared per database: do not change it."""
    path, catalog_version, _ = _versions(conn)
    return _catalog(conn, path, catalog_version)


def _versions(conn: sqlite3.Connection) -> tuple[str, int, int]:
    """The database's file ('' in memory), then its catalog and stock versions. Read before
    what they version, so what is kept is never older than the version it is kept under."""
    path = next(row[2] for row in conn.execute("PRAGMA database_list") if row[1] == "main")
    catalog, stock = conn.execute("SELECT catalog_version.version, stock_version.version"
                                  " FROM catalog_version, stock_version").fetchone()
    return path, catalog, stock


def _catalog(conn: sqlite3.Connection, path: str, version: int) -> dict[str, Product]:
    return _kept(_catalogs, path, version, lambda: {
        row[0]: Product(row[0], row[1], row[2], row[3], frozenset(json.loads(row[4] or "[]")),
                        frozenset(json.loads(row[5] or "[]")), True)
        for row in conn.execute("SELECT product_id, name, category, price, allergens, diets"
                                " FROM products WHERE active")})


def _out_of_stock(conn: sqlite3.Connection, path: str, version: int) -> frozenset[str]:
    """The products with a shelf whose latest reading is empty (a few in a whole store)."""
    return _kept(_empty_shelves, path, version, lambda: frozenset(row[0] for row in conn.execute(
        f"SELECT DISTINCT product_id FROM shelf_state WHERE {empty_shelf()}")))


def _kept(kept: dict[str, tuple[int, V]], path: str, version: int, load: Callable[[], V]) -> V:
    """`load()`, kept per database file until its `version` moves."""
    cached = kept.get(path)
    if cached is not None and cached[0] == version:
        return cached[1]
    value = load()
    if path:  # an in-memory database has no name to share what it holds under
        kept[path] = (version, value)
    return value


def _without_stock(product: Product) -> Product:
    return Product(product.product_id, product.name, product.category, product.price,
                   product.allergens, product.diets, in_stock=False)
