"""Live store traffic: an endless, seeded stream of events of all five types.

Shopper visits are interleaved as in a real store: an opted-in shopper's phone reports the
zones they walk through, they look at the kiosk (impressions, clicks, add-to-list) and pay at
a till; walk-ins without a loyalty card just pay. Each sale takes units off the shelves,
whose sensors report the change; staff restock rounds refill the emptiest. Zone sensors
report foot traffic in turn.
"""

from __future__ import annotations

import bisect
import itertools
import os
import random
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime

from edge_agent.demo.catalog import Product, catalog_by_id
from edge_agent.demo.shoppers import (
    PantryState,
    Shopper,
    allowed,
    basket_for_visit,
    start_pantry,
)
from edge_agent.demo.taxonomy import DEPARTMENTS
from edge_agent.simulator.pos import REGISTERS, Line, pos_event
from edge_agent.simulator.store import Shelves, Zones, zone_id
from models.events import Event, Interaction, Presence, ShelfReading, ZoneTraffic, utc_now

# A shelf sensor reports as soon as its shelf changes (a sale, a restock). Between changes
# the stream is shared out: visits (POS, presence, kiosk), periodic shelf readings and
# zone traffic (the rest).
VISIT_SHARE, SHELF_HEARTBEAT_SHARE = 0.75, 0.15
# Shoppers in the store at once whose events interleave.
CONCURRENT_VISITS = 8
# Share of transactions from customers without a loyalty card (customer_id null).
WALK_IN_SHARE = 0.3
WALK_IN_ITEMS = (1, 12)
# Popularity falls off with rank like real sales (a Zipf-like long tail).
POPULARITY_EXPONENT = 0.9
POPULARITY_OFFSET = 10
# A few lines are on promotion at any time, at typical supermarket discounts.
PROMOTION_RATE = 0.1
PROMOTION_DISCOUNTS = (0.1, 0.2, 0.25, 1 / 3)
KIOSK_DEVICES = tuple(f"kiosk-{n:02d}" for n in range(1, 5))
KIOSK_INTERACTIONS = (0, 4)
# impression ≫ click > add_to_list > dismiss: the usual funnel on a recommendation panel.
INTERACTION_ACTIONS = ("impression", "click", "add_to_list", "dismiss")
INTERACTION_WEIGHTS = (0.6, 0.2, 0.12, 0.08)
INTERACTION_CONTEXTS = ("shopping_list", "recommendations", "similar", "trending")
DEMO_MODEL_VERSION = "demo-popularity-1"
# Popular products drawn before settling for one of the shopper's own staples.
SUGGESTION_ATTEMPTS = 20

Step = Callable[[], tuple[Event, str] | None]  # an event and its device id, or nothing


class Popularity:
    """Draws products with a long-tailed popularity (fixed per seed)."""

    def __init__(self, products: Sequence[Product], rng: random.Random) -> None:
        self._products = list(products)
        rng.shuffle(self._products)
        weights = [(rank + POPULARITY_OFFSET) ** -POPULARITY_EXPONENT
                   for rank in range(len(self._products))]
        self._cum = list(itertools.accumulate(weights))

    def draw(self, rng: random.Random) -> Product:
        return self._products[bisect.bisect(self._cum, rng.random() * self._cum[-1])]


class LiveTraffic:
    def __init__(self, catalog: Sequence[Product], shoppers: Sequence[Shopper], *,
                 store_id: str, seed: int = 0, pantries: dict[str, PantryState] | None = None,
                 clock: Callable[[], datetime] = utc_now) -> None:
        self.store_id = store_id
        self._seed = seed
        self._clock = clock
        self._rng = random.Random(f"live:{seed}")
        # Live ids are random, not seeded: a rerun with the same seed is new traffic, not a
        # duplicate of the last run. A PRNG seeded once from the OS, because uuid4() reads
        # os.urandom per id, which costs more than building the event on some VMs.
        self._ids = random.Random(os.urandom(16))
        self._catalog = catalog_by_id(catalog)
        self._pool = list(catalog)
        self.popularity = Popularity(catalog, self._rng)
        self.shelves = Shelves(catalog, self._rng)
        self.zones = Zones(DEPARTMENTS, self._rng)
        # Shared with history back-fill when there was one; shoppers it has not seen start
        # with a plausible pantry (see `start_pantry`).
        self._pantries = pantries if pantries is not None else {}
        order = list(shoppers)
        self._rng.shuffle(order)
        # Live time is compressed (a rate of events, not a day's worth of visits), so shoppers
        # come round again and again: the first visit of the day buys what is due, later ones
        # are top-ups (the staple nearest to running out, occasional and impulse buys).
        self._shopper_cycle = itertools.cycle(order) if order else None
        self._visit_count = 0
        self._visits: list[deque[Step]] = []
        self.transactions = 0

    def events(self) -> Iterator[tuple[Event, str]]:
        while True:
            yield self.next_event()

    def next_event(self) -> tuple[Event, str]:
        while True:
            if self.shelves.has_changes:
                return self._shelf_reading()
            r = self._rng.random()
            if r < VISIT_SHARE:
                produced = self._next_visit_step()
            elif r < VISIT_SHARE + SHELF_HEARTBEAT_SHARE:
                produced = self._shelf_reading()
            else:
                produced = self._zone_traffic()
            if produced is not None:
                return produced

    # ------------------------------------------------------------------ envelope
    def _new_id(self) -> str:
        return str(uuid.UUID(int=self._ids.getrandbits(128), version=4))

    def _stamp(self) -> tuple[str, datetime]:
        return self._new_id(), self._clock()

    # ------------------------------------------------------------------ visits
    def _next_visit_step(self) -> tuple[Event, str] | None:
        while len(self._visits) < CONCURRENT_VISITS:
            self._visits.append(deque(self._new_visit()))
        i = self._rng.randrange(len(self._visits))
        visit = self._visits[i]
        step = visit.popleft()
        if not visit:
            self._visits.pop(i)
        return step()

    def _new_visit(self) -> list[Step]:
        if self._shopper_cycle is None or self._rng.random() < WALK_IN_SHARE:
            lines = [(p.product_id, 1) for p in self._walk_in_basket()]
            return [lambda: self._pay(None, lines)]
        shopper = next(self._shopper_cycle)
        self._visit_count += 1
        pantry = self._pantries.get(shopper.customer_id)
        if pantry is None:
            pantry = start_pantry(shopper, self._clock().date(), self._seed)
            self._pantries[shopper.customer_id] = pantry
        basket = basket_for_visit(shopper, self._clock().date(), pantry, self._catalog,
                                  self._pool, seed=self._seed * 1_000_003 + self._visit_count)
        lines = [(b.product_id, b.quantity) for b in basket]
        steps: list[Step] = []
        if shopper.consent_personalization:
            departments = dict.fromkeys(self._catalog[pid].department for pid, _ in lines)
            for zone in ("entrance", *(zone_id(d) for d in departments), "checkout"):
                steps.append(lambda zone=zone: self._presence(shopper, zone))
            kiosk = self._rng.choice(KIOSK_DEVICES)
            for _ in range(self._rng.randint(*KIOSK_INTERACTIONS)):
                # Shown near the start of the visit, before the shopper walks the aisles.
                steps.insert(1, lambda: self._interaction(shopper, kiosk))
        steps.append(lambda: self._pay(shopper.customer_id, lines))
        return steps

    def _walk_in_basket(self) -> list[Product]:
        count = self._rng.randint(*WALK_IN_ITEMS)
        return list({p.product_id: p for p in (self.popularity.draw(self._rng)
                                              for _ in range(count))}.values())

    def _pay(self, customer_id: str | None,
             wanted: list[tuple[str, int]]) -> tuple[Event, str] | None:
        lines: list[Line] = []
        for product_id, quantity in wanted:
            taken = self.shelves.take(product_id, quantity)
            if not taken:
                continue  # out of stock: the shopper goes without
            price = self._catalog[product_id].price
            discount = 0.0
            if self._rng.random() < PROMOTION_RATE:
                discount = taken * price * self._rng.choice(PROMOTION_DISCOUNTS)
            lines.append((product_id, taken, price, discount))
        self.shelves.after_transaction()
        if not lines:
            return None
        self.transactions += 1
        event_id, ts = self._stamp()
        event = pos_event(store_id=self.store_id, event_id=event_id, ts=ts,
                          transaction_id=f"T-{self._new_id()}", customer_id=customer_id,
                          lines=lines)
        return event, self._rng.choice(REGISTERS)

    def _presence(self, shopper: Shopper, zone: str) -> tuple[Event, str]:
        event_id, ts = self._stamp()
        event = Presence(event_id=event_id, store_id=self.store_id, ts=ts, type="presence",
                         customer_id=shopper.customer_id, zone_id=zone)
        return event, f"app-{shopper.customer_id}"

    def _interaction(self, shopper: Shopper, kiosk: str) -> tuple[Event, str]:
        context = self._rng.choice(INTERACTION_CONTEXTS)
        product_id = self._suggestion(shopper, context)
        action = self._rng.choices(INTERACTION_ACTIONS, INTERACTION_WEIGHTS)[0]
        event_id, ts = self._stamp()
        event = Interaction(event_id=event_id, store_id=self.store_id, ts=ts, type="interaction",
                            customer_id=shopper.customer_id, action=action,
                            product_id=product_id, context=context,
                            model_version=DEMO_MODEL_VERSION)
        return event, kiosk

    def _suggestion(self, shopper: Shopper, context: str) -> str:
        """A product the kiosk would show this shopper: from their list, else a popular one
        their diet and allergies allow."""
        if context != "shopping_list" or not shopper.staples:
            for _ in range(SUGGESTION_ATTEMPTS):
                product = self.popularity.draw(self._rng)
                if allowed(product, shopper.dietary_restrictions, shopper.allergens):
                    return product.product_id
        if shopper.staples:
            return self._rng.choice(shopper.staples).product_id
        return self.popularity.draw(self._rng).product_id

    # ------------------------------------------------------------------ sensors
    def _shelf_reading(self) -> tuple[Event, str]:
        shelf = self.shelves.next_to_report()
        event_id, ts = self._stamp()
        event = ShelfReading(event_id=event_id, store_id=self.store_id, ts=ts,
                             type="shelf.reading", product_id=shelf.product_id,
                             quantity=shelf.quantity, weight_g=shelf.weight_g,
                             capacity=shelf.capacity)
        return event, shelf.shelf_id

    def _zone_traffic(self) -> tuple[Event, str]:
        zone, people, dwell = self.zones.next_reading(len(self._visits))
        event_id, ts = self._stamp()
        event = ZoneTraffic(event_id=event_id, store_id=self.store_id, ts=ts, type="zone.traffic",
                            people=people, avg_dwell_s=dwell)
        return event, zone
