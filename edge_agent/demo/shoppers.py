"""Demo shoppers with realistic habits: households of 1–6, staples bought on their own cycles,
occasional and impulse buys, dietary restrictions and allergies that their baskets respect,
consent flags and a weekend-heavy visit rhythm. Seeded and reproducible.

A shopper is immutable; what they last bought lives in a `PantryState` the caller keeps, so
the same shopper can be replayed over history and then live.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from edge_agent.demo.catalog import Product
from edge_agent.demo.taxonomy import CATEGORY_BY_NAME

CUSTOMER_ID_FORMAT = "C{:05d}"
LOYALTY_NUMBER_DIGITS = 10

# Household sizes of supermarket loyalty members (roughly the UK/US census shape: one and
# two-person households are most common, six is rare).
HOUSEHOLD_SIZE_WEIGHTS = {1: 0.28, 2: 0.34, 3: 0.16, 4: 0.14, 5: 0.06, 6: 0.02}
# A category's `cycle_days` is for two people; a bigger household runs out sooner, but not
# proportionally (bigger packs, shared staples), hence an exponent below 1.
HOUSEHOLD_CYCLE_EXPONENT = 0.6
REFERENCE_HOUSEHOLD = 2
# Personal taste spreads cycles around the household's expectation (log-normal sigma).
CYCLE_NOISE_SIGMA = 0.25
# A due staple is bought a little early or late: the cycle is stretched by up to ±20 %.
DUE_JITTER = 0.2
MIN_CYCLE_DAYS = 1.0

DIET_RATES = {"vegetarian": 0.08, "vegan": 0.03, "gluten_free": 0.03, "lactose_free": 0.06}
ALLERGY_RATES = {"nuts": 0.03, "peanuts": 0.02, "milk": 0.02, "egg": 0.01, "shellfish": 0.02,
                 "fish": 0.01, "sesame": 0.01, "soy": 0.01}
# Most loyalty members accept personalization; staff assistance is a further, rarer opt-in.
CONSENT_PERSONALIZATION_RATE = 0.8
CONSENT_STAFF_ASSIST_RATE_IF_PERSONALIZED = 0.4
CONSENT_STAFF_ASSIST_RATE_OTHERWISE = 0.05

# Share of the taxonomy's categories a household buys regularly, and how many products of
# such a category sit in its repertoire (brand loyalty: usually one, sometimes two).
STAPLE_CATEGORY_SHARE = (0.25, 0.5)
PRODUCTS_PER_STAPLE_CATEGORY = (1, 1, 1, 2)
OCCASIONAL_PRODUCTS = (5, 20)
OCCASIONAL_PROBABILITY = 0.12
IMPULSE_ITEMS_MEAN = 1.2
# Only households with children buy baby products; not everyone has a pet.
PET_OWNER_RATE = 0.35
BABY_RATE_BY_HOUSEHOLD = {1: 0.0, 2: 0.05, 3: 0.35, 4: 0.3, 5: 0.3, 6: 0.3}

# Visits: every few days on average, more likely on Friday and at the weekend.
VISIT_INTERVAL_DAYS = (1.5, 7.0)
WEEKDAY_VISIT_WEIGHT = (0.8, 0.8, 0.8, 0.9, 1.2, 1.6, 0.9)  # Monday .. Sunday
# Weighted mean of the weekday weights, so the average visit rate is 1 / interval.
_MEAN_WEEKDAY_WEIGHT = sum(WEEKDAY_VISIT_WEIGHT) / 7
# Loyalty sign-ups spread over the year after this date (fixed, so seeding is idempotent).
DEMO_EPOCH = datetime(2024, 1, 1, tzinfo=UTC)


_Restrictions = tuple[tuple[str, ...], tuple[str, ...]]  # (diets, allergens)


@dataclass(frozen=True)
class Staple:
    product_id: str
    category: str
    cycle_days: float
    quantity: int


@dataclass(frozen=True)
class Shopper:
    customer_id: str
    loyalty_number: str
    household_size: int
    consent_personalization: bool
    consent_staff_assist: bool
    dietary_restrictions: tuple[str, ...]
    allergens: tuple[str, ...]
    visit_interval_days: float
    staples: tuple[Staple, ...]
    occasional: tuple[str, ...]
    created_at: datetime

    def visits_on(self, day: date, seed: int = 0) -> bool:
        """Whether this shopper comes in on `day` (deterministic per shopper, day and seed)."""
        p = WEEKDAY_VISIT_WEIGHT[day.weekday()] / (_MEAN_WEEKDAY_WEIGHT * self.visit_interval_days)
        return _day_rng(seed, self.customer_id, day, "visit").random() < p


@dataclass(frozen=True)
class BasketLine:
    product_id: str
    quantity: int
    unit_price: float


@dataclass
class PantryState:
    """When a shopper last bought each staple (the only mutable part of a shopper)."""

    last_bought: dict[str, date] = field(default_factory=dict)


def allowed(product: Product, diets: Sequence[str], allergens: Sequence[str]) -> bool:
    """Whether a shopper with these restrictions can buy the product."""
    if any(a in product.allergens for a in allergens):
        return False
    if ("vegetarian" in diets or "vegan" in diets) and product.meat:
        return False
    return all(d in product.diets for d in diets)


def generate_shoppers(catalog: Sequence[Product], count: int = 500, seed: int = 0) -> list[Shopper]:
    """`count` shoppers over `catalog`; the same catalog and seed give the same shoppers."""
    rng = random.Random(f"shoppers:{seed}")
    loyalty_numbers: set[str] = set()
    pools: dict[_Restrictions, dict[str, list[Product]]] = {}
    shoppers = []
    for number in range(1, count + 1):
        loyalty = _loyalty_number(rng, loyalty_numbers)
        shoppers.append(_shopper(number, loyalty, catalog, pools, rng))
    return shoppers


def _loyalty_number(rng: random.Random, taken: set[str]) -> str:
    while True:
        number = str(rng.randrange(10 ** (LOYALTY_NUMBER_DIGITS - 1), 10**LOYALTY_NUMBER_DIGITS))
        if number not in taken:
            taken.add(number)
            return number


def _allowed_by_category(catalog: Sequence[Product], diets: tuple[str, ...],
                         allergens: tuple[str, ...]) -> dict[str, list[Product]]:
    by_category: dict[str, list[Product]] = {}
    for product in catalog:
        if allowed(product, diets, allergens):
            by_category.setdefault(product.category, []).append(product)
    return by_category


def _shopper(number: int, loyalty: str, catalog: Sequence[Product],
             pools: dict[_Restrictions, dict[str, list[Product]]],
             rng: random.Random) -> Shopper:
    sizes, weights = zip(*HOUSEHOLD_SIZE_WEIGHTS.items(), strict=True)
    size = rng.choices(sizes, weights=weights)[0]
    diets = tuple(d for d, rate in DIET_RATES.items() if rng.random() < rate)
    if "vegan" in diets:
        # Vegan implies vegetarian and no dairy: keep the labels consistent.
        diets = tuple(dict.fromkeys(("vegetarian", *diets, "lactose_free")))
    allergens = tuple(a for a, rate in ALLERGY_RATES.items() if rng.random() < rate)
    personalized = rng.random() < CONSENT_PERSONALIZATION_RATE
    staff_rate = (CONSENT_STAFF_ASSIST_RATE_IF_PERSONALIZED if personalized
                  else CONSENT_STAFF_ASSIST_RATE_OTHERWISE)
    has_pet = rng.random() < PET_OWNER_RATE
    has_baby = rng.random() < BABY_RATE_BY_HOUSEHOLD[size]
    staples = []
    share = rng.uniform(*STAPLE_CATEGORY_SHARE)
    # Most shoppers share the same few restriction sets: filter the catalog once per set.
    if (diets, allergens) not in pools:
        pools[(diets, allergens)] = _allowed_by_category(catalog, diets, allergens)
    allowed_products = pools[(diets, allergens)]
    for name, choices in allowed_products.items():
        if (name == "pet food" and not has_pet) or (name == "baby" and not has_baby):
            continue
        if rng.random() > share:
            continue
        picked = rng.sample(choices, min(len(choices), rng.choice(PRODUCTS_PER_STAPLE_CATEGORY)))
        for product in picked:
            # Two brands of one category alternate: each lasts the household twice as long.
            cycle = _cycle(name, size, rng) * len(picked)
            staples.append(Staple(product.product_id, name, cycle, _quantity(size, rng)))
    pool = [p for products in allowed_products.values() for p in products]
    occasional = tuple(p.product_id for p in rng.sample(pool, rng.randint(*OCCASIONAL_PRODUCTS)))
    return Shopper(
        customer_id=CUSTOMER_ID_FORMAT.format(number),
        loyalty_number=loyalty,
        household_size=size,
        consent_personalization=personalized,
        consent_staff_assist=rng.random() < staff_rate,
        dietary_restrictions=diets,
        allergens=allergens,
        visit_interval_days=round(rng.uniform(*VISIT_INTERVAL_DAYS), 2),
        staples=tuple(staples),
        occasional=occasional,
        created_at=DEMO_EPOCH + timedelta(days=rng.randrange(365), seconds=rng.randrange(86400)),
    )


def _cycle(category: str, household_size: int, rng: random.Random) -> float:
    base = CATEGORY_BY_NAME[category].cycle_days
    scale = (REFERENCE_HOUSEHOLD / household_size) ** HOUSEHOLD_CYCLE_EXPONENT
    noise = math.exp(rng.gauss(0.0, CYCLE_NOISE_SIGMA))
    return round(max(MIN_CYCLE_DAYS, base * scale * noise), 2)


def _quantity(household_size: int, rng: random.Random) -> int:
    return 1 + (rng.random() < (household_size - 1) / 6)


def _day_rng(seed: int, customer_id: str, day: date, purpose: str) -> random.Random:
    # A string seed is hashed with SHA-512 by `random`: stable across runs and platforms.
    return random.Random(f"{seed}:{customer_id}:{day.isoformat()}:{purpose}")


def start_pantry(shopper: Shopper, start: date, seed: int = 0) -> PantryState:
    """A pantry as it might be on `start`: each staple last bought a random part of its cycle
    ago, so the first visit does not buy everything at once."""
    rng = _day_rng(seed, shopper.customer_id, start, "pantry")
    return PantryState({
        s.product_id: start - timedelta(days=rng.uniform(0, s.cycle_days)) for s in shopper.staples
    })


def basket_for_visit(shopper: Shopper, day: date, pantry: PantryState,
                     catalog: dict[str, Product], impulse_pool: Sequence[Product],
                     seed: int = 0) -> list[BasketLine]:
    """The basket of one visit on `day`: the staples that are due (with some jitter), now and
    then an occasional favourite, and a few impulse buys. Updates `pantry`."""
    rng = _day_rng(seed, shopper.customer_id, day, "basket")
    lines: dict[str, int] = {}
    for staple in shopper.staples:
        last = pantry.last_bought.get(staple.product_id)
        due_after = staple.cycle_days * rng.uniform(1 - DUE_JITTER, 1 + DUE_JITTER)
        if last is None or (day - last).days >= due_after:
            lines[staple.product_id] = staple.quantity
            pantry.last_bought[staple.product_id] = day
    for product_id in shopper.occasional:
        if rng.random() < OCCASIONAL_PROBABILITY:
            lines.setdefault(product_id, 1)
    for _ in range(_poisson(IMPULSE_ITEMS_MEAN, rng)):
        product = rng.choice(impulse_pool)
        if allowed(product, shopper.dietary_restrictions, shopper.allergens):
            lines.setdefault(product.product_id, 1)
    if not lines and shopper.staples:
        # Nobody queues at a till with nothing: buy the staple closest to running out.
        staple = min(shopper.staples, key=lambda s: _days_left(s, pantry, day))
        lines[staple.product_id] = staple.quantity
        pantry.last_bought[staple.product_id] = day
    return [BasketLine(pid, qty, catalog[pid].price) for pid, qty in lines.items()]


def _days_left(staple: Staple, pantry: PantryState, day: date) -> float:
    last = pantry.last_bought.get(staple.product_id, day)
    return staple.cycle_days - (day - last).days


def _poisson(mean: float, rng: random.Random) -> int:
    # Knuth's method: fine for the small means used here.
    limit, k, p = math.exp(-mean), 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k
