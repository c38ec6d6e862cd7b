"""The in-memory form of a store layout: immutable dataclasses built by `parse.py`.

Coordinates are metres on the store's floor plan, drawn the SVG way: x grows to the
right, y grows downwards. See docs/store-layouts.md for the file format.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

TemperatureZone = Literal["ambient", "chilled", "frozen"]
ShelfSide = Literal["left", "right", "up", "down"]

# The order a shopper should pick temperature zones in: ambient first, frozen last, so that
# chilled and frozen goods spend the least time out of their cabinets.
TEMPERATURE_ZONES: tuple[TemperatureZone, ...] = ("ambient", "chilled", "frozen")
ZONE_RANK: Mapping[str, int] = {zone: rank for rank, zone in enumerate(TEMPERATURE_ZONES)}
SHELF_SIDES: tuple[ShelfSide, ...] = ("left", "right", "up", "down")


@dataclass(frozen=True)
class Node:
    id: str
    x: float
    y: float


@dataclass(frozen=True)
class Edge:
    a: str
    b: str
    length: float  # metres; the euclidean distance unless the file gives a (longer) length
    kind: str = "aisle"

    @property
    def key(self) -> frozenset[str]:
        return frozenset((self.a, self.b))


@dataclass(frozen=True)
class Shelf:
    id: str
    node: str  # the walkable node the shelf is picked from
    side: ShelfSide  # where the shelf face is, seen from its node, as drawn on the map
    categories: tuple[str, ...]
    temperature: TemperatureZone
    name: str = ""


@dataclass(frozen=True)
class AccessPoint:
    """An entrance or a checkout: a named point on the graph."""

    id: str
    node: str
    name: str = ""


@dataclass(frozen=True)
class Zone:
    """A traffic zone (ids match `zone.traffic` events); congestion in it raises walking cost."""

    id: str
    nodes: frozenset[str]
    edges: frozenset[frozenset[str]]
    name: str = ""

    def covers(self, edge: Edge) -> bool:
        """An edge is in the zone if listed, or if both its ends are zone nodes."""
        return edge.key in self.edges or (edge.a in self.nodes and edge.b in self.nodes)


@dataclass(frozen=True)
class Fixture:
    """A drawing-only rectangle (gondola, cabinet, till bank); not walkable, not routed."""

    id: str
    x: float
    y: float
    width: float
    height: float
    kind: str = "gondola"
    temperature: TemperatureZone | None = None


@dataclass(frozen=True)
class Bounds:
    min_x: float
    min_y: float
    max_x: float
    max_y: float

    def contains(self, x: float, y: float) -> bool:
        return self.min_x <= x <= self.max_x and self.min_y <= y <= self.max_y


@dataclass(frozen=True)
class Layout:
    id: str
    name: str
    kind: str
    bounds: Bounds
    outline: tuple[tuple[float, float], ...]
    nodes: Mapping[str, Node]
    edges: tuple[Edge, ...]
    shelves: Mapping[str, Shelf]
    entrances: Mapping[str, AccessPoint]
    checkouts: Mapping[str, AccessPoint]
    zones: Mapping[str, Zone]
    fixtures: tuple[Fixture, ...] = ()
    # category key (see `category_key`) -> the shelves holding it
    shelves_by_category: Mapping[str, tuple[Shelf, ...]] = field(default_factory=dict)

    def shelves_for(self, category: str) -> tuple[Shelf, ...]:
        """The shelves holding `category` (matched case- and space-insensitively); () if none."""
        return self.shelves_by_category.get(category_key(category), ())

    @property
    def categories(self) -> frozenset[str]:
        return frozenset(c for shelf in self.shelves.values() for c in shelf.categories)


def category_key(category: str) -> str:
    """How categories are matched: case-insensitive, surrounding and repeated spaces ignored."""
    return " ".join(category.split()).casefold()
