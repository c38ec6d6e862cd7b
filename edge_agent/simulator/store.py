"""The simulated store's physical state: shelves that empty as items sell and are restocked by
staff rounds that sometimes come too late, and zones with foot traffic."""

from __future__ import annotations

import random
import re
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

from edge_agent.demo.catalog import Product

SHELF_ID_PREFIX = "SH-"
# Shelf capacity in units (facings × depth): cheap, fast-moving goods get more room.
SHELF_CAPACITIES = (12, 18, 24, 36, 48)
# A shelf starts somewhere between nearly empty and full, so the first minutes of a demo
# already show low shelves instead of a freshly stocked store.
INITIAL_FILL = (0.05, 1.0)
# Staff restock a shelf once it is at or below this share of capacity...
RESTOCK_THRESHOLD = 0.25
# ...on rounds every this many transactions, a few low shelves per round: empty ones first,
# the others in no particular order (nobody has restock alerts yet), so shelves run empty
# before staff get there — what restock alerts are built on. Rounds are counted in
# transactions, not seconds, so that happens at any simulation rate.
RESTOCK_EVERY_TRANSACTIONS = 10
RESTOCKS_PER_ROUND = 2
# With a longer backlog staff work faster (more hands on the floor): a share of the low
# shelves on top, which keeps the number of empty shelves steady over hours of simulation.
RESTOCK_BACKLOG_SHARE = 0.01
# Loose produce is weighed: its shelf also reports grams (average unit weight).
LOOSE_UNIT_WEIGHT_G = 180.0

# Zones beyond the departments: where people enter, queue and pay.
EXTRA_ZONES = ("entrance", "checkout")
# Typical dwell per zone (seconds): long at the deli and checkout, short at the entrance.
DEFAULT_DWELL_S = 60.0
DWELL_S = {"entrance": 20.0, "checkout": 180.0, "produce": 120.0, "meat and fish": 90.0,
           "chilled food": 75.0, "drinks": 50.0, "household": 45.0}


def zone_id(department: str) -> str:
    """A department's zone id, safe as an MQTT topic segment ("meat and fish" → "meat-and-fish")."""
    return re.sub(r"[^a-z0-9]+", "-", department.lower()).strip("-")


@dataclass
class Shelf:
    shelf_id: str
    product_id: str
    capacity: int
    quantity: int
    weighed: bool

    @property
    def weight_g(self) -> float | None:
        return round(self.quantity * LOOSE_UNIT_WEIGHT_G, 1) if self.weighed else None


class Shelves:
    """One sensor-equipped shelf per product; remembers which shelves changed since reported."""

    def __init__(self, catalog: Sequence[Product], rng: random.Random) -> None:
        self._rng = rng
        self.by_product: dict[str, Shelf] = {}
        for product in catalog:
            capacity = rng.choice(SHELF_CAPACITIES)
            self.by_product[product.product_id] = Shelf(
                shelf_id=SHELF_ID_PREFIX + product.product_id,
                product_id=product.product_id,
                capacity=capacity,
                quantity=round(capacity * rng.uniform(*INITIAL_FILL)),
                weighed=product.size == "loose",
            )
        self._all = list(self.by_product.values())
        self._low = {s.shelf_id: s for s in self._all if self._is_low(s)}
        self._changed: OrderedDict[str, Shelf] = OrderedDict()
        self._transactions = 0
        self.restocks = 0
        self.emptied = 0

    def take(self, product_id: str, quantity: int) -> int:
        """Take up to `quantity` units off the shelf; returns how many were there to take."""
        shelf = self.by_product.get(product_id)
        if shelf is None:
            return quantity  # a product without a simulated shelf is never out of stock
        taken = min(quantity, shelf.quantity)
        if taken:
            shelf.quantity -= taken
            self.emptied += shelf.quantity == 0
            if self._is_low(shelf):
                self._low[shelf.shelf_id] = shelf
            self._mark(shelf)
        return taken

    def after_transaction(self) -> None:
        self._transactions += 1
        if self._transactions % RESTOCK_EVERY_TRANSACTIONS == 0:
            self._restock_round()

    @staticmethod
    def _is_low(shelf: Shelf) -> bool:
        return shelf.quantity <= shelf.capacity * RESTOCK_THRESHOLD

    def _restock_round(self) -> None:
        # An empty gap on a shelf is what staff notice first; the rest of the low shelves they
        # come to in no particular order.
        low = self._rng.sample(list(self._low.values()), len(self._low))
        low.sort(key=lambda s: s.quantity > 0)
        for shelf in low[:RESTOCKS_PER_ROUND + int(len(low) * RESTOCK_BACKLOG_SHARE)]:
            shelf.quantity = shelf.capacity
            del self._low[shelf.shelf_id]
            self.restocks += 1
            self._mark(shelf)

    def _mark(self, shelf: Shelf) -> None:
        # Keeps its place if already waiting: the report carries the shelf's state then.
        self._changed.setdefault(shelf.shelf_id, shelf)

    @property
    def has_changes(self) -> bool:
        return bool(self._changed)

    def next_to_report(self) -> Shelf:
        """The shelf that changed longest ago and is not yet reported, else a periodic one."""
        if self._changed:
            return self._changed.popitem(last=False)[1]
        return self._rng.choice(self._all)


class Zones:
    """Foot traffic per zone, following how many visits are under way."""

    def __init__(self, departments: Sequence[str], rng: random.Random) -> None:
        self._rng = rng
        self.zone_ids = [*EXTRA_ZONES[:1], *(zone_id(d) for d in departments), EXTRA_ZONES[1]]
        self._dwell = {zone_id(k): v for k, v in DWELL_S.items()}
        self._next = 0

    def next_reading(self, shoppers_in_store: int) -> tuple[str, int, float]:
        """(zone, people, avg_dwell_s) for the next zone in turn."""
        zone = self.zone_ids[self._next % len(self.zone_ids)]
        self._next += 1
        # Shoppers spread over the zones; a few staff and browsers are always about.
        mean = 1 + shoppers_in_store * 3 / len(self.zone_ids)
        people = max(0, round(self._rng.gauss(mean, mean**0.5)))
        dwell = self._dwell.get(zone, DEFAULT_DWELL_S) * self._rng.uniform(0.6, 1.4)
        return zone, people, round(dwell, 1) if people else 0.0
