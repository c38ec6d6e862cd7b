"""What a planned route looks like to its callers (the edge API, the kiosk map)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

NOT_FOUND_REASON = "not found in this store"


@dataclass(frozen=True)
class RouteItem:
    item_id: str
    category: str
    shelf_id: str  # the shelf to pick it from


@dataclass(frozen=True)
class RouteStop:
    number: int  # 1-based visiting order, as drawn on the map
    node: str
    x: float
    y: float
    temperature: str  # ambient / chilled / frozen
    shelves: tuple[str, ...]
    items: tuple[RouteItem, ...]
    distance_from_previous_m: float


@dataclass(frozen=True)
class NotFoundItem:
    item_id: str
    category: str
    reason: str = NOT_FOUND_REASON


@dataclass(frozen=True)
class Route:
    layout_id: str
    entrance: str | None  # entrance id, or None when the route starts at a given node
    start_node: str
    checkout: str | None  # checkout id, or None when the route ends at the last stop
    end_node: str
    stops: tuple[RouteStop, ...]
    distance_m: float  # metres walked along the polyline
    walking_time_s: float  # walking at the current congestion plus picking time
    polyline: tuple[tuple[float, float], ...]  # (x, y) metres, start to end along the graph
    not_found: tuple[NotFoundItem, ...]
    solver: str
    optimal: bool  # proven optimal for the planner's walking costs
    cost_m: float  # the objective: metres weighted by congestion (= distance_m if none)
    planning_ms: float

    @property
    def item_count(self) -> int:
        return sum(len(stop.items) for stop in self.stops)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict (tuples become lists)."""
        return asdict(self)
