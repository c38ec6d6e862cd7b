"""Back-filled purchase history: the POS transactions of the last D days, each shopper visiting
on their own rhythm, so a fresh demo already knows everyone's habits.

Event and transaction ids are derived from (store, seed, shopper, day), so publishing the same
history twice stores it once.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime, time, timedelta

from edge_agent.demo.catalog import Product, catalog_by_id
from edge_agent.demo.shoppers import PantryState, Shopper, basket_for_visit, start_pantry
from edge_agent.simulator.pos import REGISTERS, deterministic_id, pos_event
from models.events import PosTransaction

# Opening hours and when people shop: a lunchtime bump and the after-work peak.
OPENING_HOUR, CLOSING_HOUR = 8, 21
HOUR_WEIGHTS = (2, 3, 4, 5, 6, 4, 4, 5, 7, 8, 7, 5, 3)  # 08:00 .. 20:00


def visit_time(day: date, rng: random.Random) -> datetime:
    hour = rng.choices(range(OPENING_HOUR, CLOSING_HOUR), weights=HOUR_WEIGHTS)[0]
    return datetime.combine(day, time(hour), tzinfo=UTC) + timedelta(seconds=rng.randrange(3600))


def history_days(days: int, today: date) -> list[date]:
    """The `days` whole days before `today`, oldest first (today itself is live traffic)."""
    return [today - timedelta(days=n) for n in range(days, 0, -1)]


def generate_history(catalog: Sequence[Product], shoppers: Sequence[Shopper], *, store_id: str,
                     days: int, seed: int = 0, today: date | None = None,
                     pantries: dict[str, PantryState] | None = None,
                     ) -> Iterator[tuple[PosTransaction, str]]:
    """Yield (transaction, register) for every visit of the last `days` days, oldest first.

    `pantries` (customer id → state) is filled in as it goes, so live traffic that follows
    carries on from where history left off.
    """
    today = today or datetime.now(UTC).date()
    index = catalog_by_id(catalog)
    pool = list(catalog)
    dates = history_days(days, today)
    if pantries is None:
        pantries = {}
    for shopper in shoppers:
        if dates and shopper.customer_id not in pantries:
            pantries[shopper.customer_id] = start_pantry(shopper, dates[0], seed)
    for day in dates:
        todays = []
        for shopper in shoppers:
            if not shopper.visits_on(day, seed):
                continue
            pantry = pantries[shopper.customer_id]
            basket = basket_for_visit(shopper, day, pantry, index, pool, seed=seed)
            if not basket:
                continue
            rng = random.Random(f"{seed}:{shopper.customer_id}:{day.isoformat()}:when")
            key = (store_id, seed, shopper.customer_id, day.isoformat())
            event = pos_event(
                store_id=store_id,
                event_id=deterministic_id("history", *key),
                ts=visit_time(day, rng),
                transaction_id=f"H-{day:%Y%m%d}-{shopper.customer_id}-{seed}",
                customer_id=shopper.customer_id,
                lines=[(b.product_id, b.quantity, b.unit_price, 0.0) for b in basket],
            )
            todays.append((event, rng.choice(REGISTERS)))
        todays.sort(key=lambda pair: pair[0].ts)
        yield from todays
