"""The demo catalog: a few thousand products generated from the taxonomy, seeded and reproducible.

Names come from a category's variants × brands × pack sizes ("Meadowvale semi-skimmed milk
2 l"); prices sit inside the category's range, moved by pack size and brand tier; allergens
and diet labels are the category's. The same seed always gives the same catalog, so product
ids (`P000123`) are stable across runs of the demo and the simulator.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from edge_agent.demo.taxonomy import CATEGORIES, Category

DEFAULT_CATALOG_SIZE = 3000
PRODUCT_ID_FORMAT = "P{:06d}"

# Brand tiers move the price inside the category range: own-label value lines are cheaper,
# premium brands dearer, which is what makes a catalog feel like a real supermarket's.
_TIER_PRICE_FACTOR = {"value": 0.75, "standard": 1.0, "premium": 1.35}
_OWN_LABEL = (("Basics", "value"), ("Greenway", "standard"), ("Greenway Finest", "premium"))
_BRANDS_BY_DEPARTMENT: dict[str, tuple[tuple[str, str], ...]] = {
    "produce": (("Field Fresh", "standard"), ("Orchard Lane", "premium"), ("Sunvale", "standard")),
    "dairy": (("Meadowvale", "standard"), ("Alpine Dairy", "premium"), ("Daisy Farm", "standard")),
    "bakery": (("Hearthstone", "standard"), ("Village Bakery", "premium"),
               ("Millstone", "standard")),
    "meat and fish": (("Hillside Farms", "standard"), ("Ocean Catch", "premium"),
                      ("Butcher's Block", "premium")),
    "chilled food": (("Kitchen Table", "standard"), ("Deli Co", "premium")),
    "frozen": (("Polar Kitchen", "standard"), ("Frostbay", "value"), ("Nordic Frost", "premium")),
    "pantry": (("Pantry Gold", "standard"), ("Cucina", "premium"), ("Heritage Mill", "standard")),
    "snacks": (("Crunchers", "standard"), ("Cocoa House", "premium"), ("Snackwell", "value")),
    "drinks": (("Clearspring", "standard"), ("Vintner's Choice", "premium"), ("Fizz", "value")),
    "household": (("Sparkle", "standard"), ("EcoHome", "premium"), ("CleanPro", "standard")),
    "personal care": (("Fresh & Co", "standard"), ("Botanica", "premium")),
    "baby": (("Little Ones", "standard"), ("Tiny Steps", "premium")),
    "pet": (("Happy Paws", "standard"), ("Whisker", "premium")),
}

# Pack sizes and how much each moves the price (1.0 = the category's typical pack).
_SIZES_BY_DEPARTMENT: dict[str, tuple[tuple[str, float], ...]] = {
    "produce": (("500 g", 0.8), ("1 kg", 1.0), ("pack of 6", 1.1), ("loose", 0.6)),
    "dairy": (("250 g", 0.7), ("500 ml", 0.6), ("1 l", 1.0), ("2 l", 1.5), ("pack of 6", 1.2)),
    "bakery": (("400 g", 0.8), ("800 g", 1.0), ("pack of 4", 1.0), ("pack of 6", 1.2)),
    "meat and fish": (("250 g", 0.7), ("500 g", 1.0), ("1 kg", 1.6)),
    "chilled food": (("200 g", 0.7), ("400 g", 1.0), ("family size", 1.5)),
    "frozen": (("400 g", 0.8), ("750 g", 1.0), ("1.5 kg", 1.5)),
    "pantry": (("250 g", 0.7), ("500 g", 1.0), ("1 kg", 1.4)),
    "snacks": (("150 g", 0.8), ("multipack", 1.3), ("sharing bag", 1.1)),
    "drinks": (("500 ml", 0.5), ("1.5 l", 1.0), ("4 x 440 ml", 1.4), ("75 cl", 1.0)),
    "household": (("500 ml", 0.7), ("1 l", 1.0), ("20 washes", 1.0), ("40 washes", 1.6),
                  ("pack of 9", 1.1)),
    "personal care": (("75 ml", 0.6), ("250 ml", 1.0), ("400 ml", 1.3)),
    "baby": (("pack of 40", 1.0), ("pack of 64", 1.4), ("200 g jar", 0.4)),
    "pet": (("400 g", 0.5), ("2 kg", 1.2), ("12 pouches", 1.0)),
}

# Where a department's sizes read wrong ("green tea 1 kg"), the category has its own.
_SIZES_BY_CATEGORY: dict[str, tuple[tuple[str, float], ...]] = {
    "canned food": (("200 g tin", 0.7), ("400 g tin", 1.0), ("4 x 400 g", 1.8)),
    "soups": (("400 g tin", 1.0), ("600 g pot", 1.3)),
    "tea": (("40 bags", 0.7), ("80 bags", 1.0), ("160 bags", 1.6)),
    "coffee": (("100 g jar", 0.7), ("227 g", 1.0), ("500 g", 1.6)),
    "oil and vinegar": (("250 ml", 0.6), ("500 ml", 1.0), ("1 l", 1.5)),
    "yogurt": (("150 g", 0.5), ("500 g", 1.0), ("pack of 4", 1.1)),
    "eggs": (("pack of 6", 1.0), ("pack of 10", 1.4), ("pack of 12", 1.7)),
    "milk": (("1 pint", 0.6), ("1 l", 1.0), ("2 l", 1.5)),
    "plant milk": (("250 ml", 0.5), ("1 l", 1.0), ("6 x 1 l", 1.9)),
    "herbs": (("30 g", 1.0), ("growing pot", 1.3), ("100 g", 2.0)),
    "fresh juice": (("250 ml", 0.5), ("1 l", 1.0), ("1.75 l", 1.5)),
    "cream": (("150 ml", 0.7), ("300 ml", 1.0), ("600 ml", 1.6)),
    "wine": (("3 x 25 cl", 0.9), ("75 cl", 1.0), ("1.5 l", 1.6)),
}


@dataclass(frozen=True)
class Product:
    product_id: str
    name: str
    brand: str
    department: str
    category: str
    price: float
    size: str
    temperature_zone: str
    allergens: tuple[str, ...]
    diets: tuple[str, ...]
    meat: bool


def generate_catalog(seed: int = 0, size: int = DEFAULT_CATALOG_SIZE) -> list[Product]:
    """`size` products over every category of the taxonomy; the same seed, the same catalog."""
    capacities = [len(_combinations(c)) for c in CATEGORIES]
    if not len(CATEGORIES) <= size <= sum(capacities):
        raise ValueError(f"catalog size must be between {len(CATEGORIES)} (one per category) "
                         f"and {sum(capacities)} (every variant, brand and size)")
    rng = random.Random(seed)
    products: list[Product] = []
    for category, count in zip(CATEGORIES, _split(size, capacities), strict=True):
        for offer in _offers(category, count, rng):
            products.append(_product(len(products) + 1, category, *offer, rng))
    return products


def _split(size: int, capacities: list[int]) -> list[int]:
    """Products per category, proportional to its number of variants, within what each can
    hold, summing to `size`."""
    weights = [len(c.variants) for c in CATEGORIES]
    exact = [size * w / sum(weights) for w in weights]
    counts = [min(cap, max(1, int(x))) for x, cap in zip(exact, capacities, strict=True)]
    # Largest remainder first, so the split is deterministic and the sum exact.
    order = sorted(range(len(exact)), key=lambda i: exact[i] - int(exact[i]), reverse=True)
    while sum(counts) < size:
        for i in order:
            if sum(counts) < size and counts[i] < capacities[i]:
                counts[i] += 1
    while sum(counts) > size:
        counts[max(range(len(counts)), key=lambda k: counts[k])] -= 1
    return counts


_Offer = tuple[str, tuple[str, str], tuple[str, float]]


def _combinations(category: Category) -> list[_Offer]:
    brands = _BRANDS_BY_DEPARTMENT[category.department] + _OWN_LABEL
    sizes = _SIZES_BY_CATEGORY.get(category.name) or _SIZES_BY_DEPARTMENT[category.department]
    return [(v, b, s) for v in category.variants for b in brands for s in sizes]


def _offers(category: Category, count: int, rng: random.Random) -> list[_Offer]:
    """`count` distinct (variant, brand, size) combinations, spread over the variants."""
    combos = _combinations(category)
    per_variant = [[c for c in combos if c[0] == variant] for variant in category.variants]
    for variant_combos in per_variant:
        rng.shuffle(variant_combos)
    # Round-robin over the variants, so every variant is on the shelf before any gets a
    # second brand or size.
    offers: list[_Offer] = []
    for round_no in range(max(len(v) for v in per_variant)):
        for variant_combos in per_variant:
            if len(offers) < count and round_no < len(variant_combos):
                offers.append(variant_combos[round_no])
    return offers


def _product(number: int, category: Category, variant: str, brand: tuple[str, str],
             pack: tuple[str, float], rng: random.Random) -> Product:
    brand_name, tier = brand
    size_label, size_factor = pack
    lo, hi = category.price_range
    typical = lo + (hi - lo) * rng.uniform(0.25, 0.75)
    price = typical * size_factor * _TIER_PRICE_FACTOR[tier] * rng.uniform(0.9, 1.1)
    return Product(
        product_id=PRODUCT_ID_FORMAT.format(number),
        name=f"{brand_name} {variant} {size_label}",
        brand=brand_name,
        department=category.department,
        category=category.name,
        price=_shelf_price(min(max(price, lo), hi)),
        size=size_label,
        temperature_zone=category.zone,
        allergens=tuple(category.allergens),
        diets=tuple(category.diets),
        meat=category.meat,
    )


def _shelf_price(price: float) -> float:
    """Round to a shelf-edge price ending in 9 (1.29, 3.49), never below 0.09."""
    return max(0.09, round(round(price * 10) / 10 - 0.01, 2))


def catalog_by_id(catalog: list[Product]) -> dict[str, Product]:
    return {p.product_id: p for p in catalog}
