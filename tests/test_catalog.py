"""The demo catalog: size, reproducibility, coverage of the taxonomy, realistic fields."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from edge_agent.demo.catalog import Product, generate_catalog
from edge_agent.demo.taxonomy import CATEGORIES, CATEGORY_BY_NAME


@pytest.fixture(scope="module")
def catalog() -> list[Product]:
    return generate_catalog(seed=0)


def test_same_seed_same_catalog_other_seed_differs(catalog: list[Product]) -> None:
    assert generate_catalog(seed=0) == catalog
    assert generate_catalog(seed=1) != catalog


@pytest.mark.parametrize("size", [len(CATEGORIES), 500, 3000])
def test_exact_size_unique_ids_and_names(size: int) -> None:
    products = generate_catalog(seed=3, size=size)
    assert len(products) == size
    assert len({p.product_id for p in products}) == size
    assert len({p.name for p in products}) == size
    assert all(re.fullmatch(r"P\d{6}", p.product_id) for p in products)


def test_impossible_sizes_are_refused() -> None:
    with pytest.raises(ValueError, match="catalog size"):
        generate_catalog(size=len(CATEGORIES) - 1)
    with pytest.raises(ValueError, match="catalog size"):
        generate_catalog(size=100_000)


def test_every_category_present_with_its_fields(catalog: list[Product]) -> None:
    per_category = Counter(p.category for p in catalog)
    assert set(per_category) == {c.name for c in CATEGORIES}
    assert min(per_category.values()) >= 10
    for product in catalog:
        category = CATEGORY_BY_NAME[product.category]
        lo, hi = category.price_range
        assert lo - 0.01 <= product.price <= hi, product
        assert product.department == category.department
        assert product.temperature_zone == category.zone
        assert product.allergens == category.allergens
        assert product.diets == category.diets
        assert product.meat == category.meat
        assert product.name.startswith(product.brand)
        assert any(v in product.name for v in category.variants)


def test_prices_vary_within_a_category(catalog: list[Product]) -> None:
    milk = [p.price for p in catalog if p.category == "milk"]
    assert len(set(milk)) > 5
