"""Route planning over a store layout: shortest walks past requested shelves."""

from store_layouts.routing.planner import (
    PICK_SECONDS_PER_ITEM,
    PICK_SECONDS_PER_STOP,
    WALKING_SPEED_M_S,
    RoutePlanner,
)
from store_layouts.routing.result import NotFoundItem, Route, RouteItem, RouteStop
from store_layouts.routing.solvers import SOLVERS

__all__ = [
    "PICK_SECONDS_PER_ITEM",
    "PICK_SECONDS_PER_STOP",
    "SOLVERS",
    "WALKING_SPEED_M_S",
    "NotFoundItem",
    "Route",
    "RouteItem",
    "RoutePlanner",
    "RouteStop",
]
