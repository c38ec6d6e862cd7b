"""Finding products by what a person would type: part of a name ("semi skimmed"), a
category ("milk"), or a product code ("P000412")."""

from __future__ import annotations

import re
import sqlite3
import threading
from collections import defaultdict
from dataclasses import dataclass, field

from edge_agent.shoppers.catalog import Product, active_products, products_by_id

# What a search box sends is a few words; anything longer is not a product search.
MAX_QUERY_CHARS = 64
# Below this many letters a plural "s" is part of the word ("gas", "bus"), not a plural.
MIN_STEM_CHARS = 4
# Candidates whose stock is read before in-stock ones are moved up, per result wanted.
STOCK_READ_FACTOR = 4
# Catalogs indexed at once (one per database a process serves; tests open several).
MAX_INDEXES = 4
# Ranks, best first: the product code, the category named exactly, whole words of the
# name or category, the starts of words.
CODE, CATEGORY, WHOLE_WORDS, WORD_STARTS = range(4)
_WORD = re.compile(r"[^\W_]+")


def words(text: str) -> list[str]:
    return _WORD.findall(text.casefold())


@dataclass
class _Index:
    """Word -> the products whose name or category has it, over one catalog version."""

    products: dict[str, Product]
    by_word: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    by_category: dict[tuple[str, ...], set[str]] = field(
        default_factory=lambda: defaultdict(set))
    by_code: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, catalog: dict[str, Product]) -> _Index:
        index = cls(catalog)
        for product in catalog.values():
            pid = product.product_id
            index.by_code[pid.casefold()] = pid
            index.by_category[tuple(words(product.category))].add(pid)
            for word in {*words(product.name), *words(product.category)}:
                index.by_word[word].add(pid)
        return index

    def having(self, stems: tuple[str, ...], whole: bool) -> set[str]:
        """Products with a word equal to one of `stems`, or (not `whole`) starting with one."""
        if whole:
            return set().union(*(self.by_word.get(stem, ()) for stem in stems))
        return set().union(*(ids for word, ids in self.by_word.items()
                             if word.startswith(stems)))


# id(catalog) -> its index; a changed catalog is a new object, so a new entry.
_indexes: dict[int, _Index] = {}
_lock = threading.Lock()


def _index_of(catalog: dict[str, Product]) -> _Index:
    with _lock:
        cached = _indexes.get(id(catalog))
    if cached is not None and cached.products is catalog:
        return cached
    index = _Index.of(catalog)
    with _lock:
        if len(_indexes) >= MAX_INDEXES:
            _indexes.clear()
        _indexes[id(catalog)] = index
    return index


def _stems(term: str) -> tuple[str, ...]:
    """`term`, and without a plural "s" ("eggs" finds "egg", "apples" "apple")."""
    if len(term) >= MIN_STEM_CHARS and term.endswith("s"):
        return term, term[:-1]
    return (term,)


def _ranked(index: _Index, query: str) -> dict[str, int]:
    """Product id -> rank, for every product matching all words of `query`."""
    phrase = tuple(words(query))
    if not phrase:
        return {}
    stems = [_stems(term) for term in phrase]
    starts = set.intersection(*(index.having(s, whole=False) for s in stems))
    whole = set.intersection(*(index.having(s, whole=True) for s in stems))
    ranks = {pid: WHOLE_WORDS if pid in whole else WORD_STARTS for pid in starts}
    ranks.update(dict.fromkeys(index.by_category.get(phrase, ()), CATEGORY))
    code = index.by_code.get(query.strip().casefold())
    if code is not None:
        ranks[code] = CODE
    return ranks


def search_products(conn: sqlite3.Connection, query: str, limit: int) -> list[Product]:
    """Products matching every word of `query`, best matches first; among equals, those in
    stock before those whose shelf is empty, then shorter names."""
    index = _index_of(active_products(conn))
    ranks = _ranked(index, query)
    ordered = sorted(ranks, key=lambda pid: (ranks[pid], len(index.products[pid].name),
                                             index.products[pid].name))
    page = ordered[:limit * STOCK_READ_FACTOR]
    stocked = products_by_id(conn, page)
    page.sort(key=lambda pid: (ranks[pid], not stocked[pid].in_stock))  # stable: names kept
    return [stocked[pid] for pid in page[:limit]]
