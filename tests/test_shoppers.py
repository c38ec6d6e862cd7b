"""Demo shoppers: reproducible, realistic repurchase cycles and visits, restrictions respected."""

from __future__ import annotations

import itertools
import re
import statistics
from collections import Counter
from datetime import date, timedelta
from pathlib import Path

import pytest

from edge_agent.demo.catalog import Product, catalog_by_id, generate_catalog
from edge_agent.demo.seed import seed_demo_data
from edge_agent.demo.shoppers import (
    HOUSEHOLD_SIZE_WEIGHTS,
    Shopper,
    allowed,
    basket_for_visit,
    generate_shoppers,
    start_pantry,
)
from edge_agent.storage import open_database

COUNT = 400
START = date(2026, 9, 7)  # a Monday


@pytest.fixture(scope="module")
def catalog() -> list[Product]:
    return generate_catalog(seed=0)


@pytest.fixture(scope="module")
def shoppers(catalog: list[Product]) -> list[Shopper]:
    return generate_shoppers(catalog, COUNT, seed=0)


def test_reproducible_with_a_seed(catalog: list[Product], shoppers: list[Shopper]) -> None:
    assert generate_shoppers(catalog, COUNT, seed=0) == shoppers
    assert generate_shoppers(catalog, COUNT, seed=1) != shoppers


def test_identities(shoppers: list[Shopper]) -> None:
    assert [s.customer_id for s in shoppers[:2]] == ["C00001", "C00002"]
    loyalty = [s.loyalty_number for s in shoppers]
    assert len(set(loyalty)) == COUNT
    assert all(re.fullmatch(r"[1-9]\d{9}", n) for n in loyalty)


def test_household_sizes_cover_one_to_six(shoppers: list[Shopper]) -> None:
    sizes = Counter(s.household_size for s in shoppers)
    assert set(sizes) <= set(HOUSEHOLD_SIZE_WEIGHTS)
    assert sizes[1] + sizes[2] > COUNT / 2  # small households dominate
    assert sizes[4] + sizes[5] + sizes[6] > 0


def test_consent_distribution(shoppers: list[Shopper]) -> None:
    personalization = sum(s.consent_personalization for s in shoppers) / COUNT
    staff = sum(s.consent_staff_assist for s in shoppers) / COUNT
    assert 0.7 < personalization < 0.9
    assert 0.15 < staff < personalization


def _mean_cycle(shoppers: list[Shopper], category: str) -> float:
    return statistics.mean(t.cycle_days for s in shoppers for t in s.staples
                           if t.category == category)


def test_repurchase_cycles_are_realistic(shoppers: list[Shopper]) -> None:
    milk, detergent = _mean_cycle(shoppers, "milk"), _mean_cycle(shoppers, "laundry")
    assert 3 <= milk <= 9  # about weekly
    assert 20 <= detergent <= 45  # about monthly
    assert milk < detergent


def test_bigger_households_run_out_sooner(shoppers: list[Shopper]) -> None:
    def mean_milk(sizes: set[int]) -> float:
        return _mean_cycle([s for s in shoppers if s.household_size in sizes], "milk")

    assert mean_milk({4, 5, 6}) < mean_milk({1})


def test_dietary_restrictions_and_allergies_are_respected(
        catalog: list[Product], shoppers: list[Shopper]) -> None:
    index = catalog_by_id(catalog)
    restricted = [s for s in shoppers if s.dietary_restrictions or s.allergens]
    diets = Counter(d for s in shoppers for d in s.dietary_restrictions)
    assert {"vegetarian", "vegan", "gluten_free", "lactose_free"} <= set(diets)
    assert restricted
    for shopper in restricted:
        for product_id in [t.product_id for t in shopper.staples] + list(shopper.occasional):
            product = index[product_id]
            assert allowed(product, shopper.dietary_restrictions, shopper.allergens)
            assert not set(product.allergens) & set(shopper.allergens)
            if "vegetarian" in shopper.dietary_restrictions:
                assert not product.meat
        pantry = start_pantry(shopper, START)
        for day in range(14):
            for line in basket_for_visit(shopper, START + timedelta(days=day), pantry, index,
                                         catalog):
                assert allowed(index[line.product_id], shopper.dietary_restrictions,
                               shopper.allergens)


def test_visits_every_few_days_and_weekend_heavy(shoppers: list[Shopper]) -> None:
    weekdays: Counter[int] = Counter()
    for shopper in shoppers:
        for day in range(56):
            when = START + timedelta(days=day)
            if shopper.visits_on(when):
                weekdays[when.weekday()] += 1
    per_week = sum(weekdays.values()) / COUNT / 8
    assert 1 <= per_week <= 4
    assert weekdays[5] > weekdays[1] * 1.4  # Saturday vs Tuesday


def test_staples_are_bought_on_their_cycle(catalog: list[Product],
                                           shoppers: list[Shopper]) -> None:
    index = catalog_by_id(catalog)
    gaps: dict[str, list[int]] = {"milk": [], "laundry": []}
    for shopper in shoppers[:200]:
        pantry = start_pantry(shopper, START)
        bought: dict[str, list[date]] = {}
        for day in range(100):
            when = START + timedelta(days=day)
            if not shopper.visits_on(when):
                continue
            for line in basket_for_visit(shopper, when, pantry, index, catalog):
                bought.setdefault(line.product_id, []).append(when)
        for staple in shopper.staples:
            if staple.category in gaps:
                days = bought.get(staple.product_id, [])
                gaps[staple.category] += [(b - a).days for a, b in itertools.pairwise(days)]
    assert statistics.median(gaps["milk"]) < statistics.median(gaps["laundry"])
    assert 3 <= statistics.median(gaps["milk"]) <= 10
    assert 20 <= statistics.median(gaps["laundry"]) <= 50


def test_baskets_are_reproducible_and_realistic(catalog: list[Product],
                                                shoppers: list[Shopper]) -> None:
    index = catalog_by_id(catalog)
    sizes = []
    for shopper in shoppers[:100]:
        first = basket_for_visit(shopper, START, start_pantry(shopper, START), index, catalog)
        again = basket_for_visit(shopper, START, start_pantry(shopper, START), index, catalog)
        assert first == again
        assert first, "a visit always buys something"
        sizes.append(len(first))
    assert 3 <= statistics.mean(sizes) <= 25


def test_seeding_the_database_is_idempotent(tmp_path: Path, catalog: list[Product],
                                            shoppers: list[Shopper]) -> None:
    db = open_database(tmp_path / "edge.db")
    seed_demo_data(db, catalog, shoppers)
    seed_demo_data(db, catalog, shoppers)
    assert db["products"].count == len(catalog)
    assert db["customers"].count == COUNT
    row = db["customers"].get("C00001")
    assert row["loyalty_number"] == shoppers[0].loyalty_number
    assert row["consent_personalization"] in (0, 1)
    assert row["dietary_restrictions"].startswith("[")
    product = db["products"].get("P000001")
    assert product["name"] == catalog[0].name and product["active"] == 1
