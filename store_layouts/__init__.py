"""Store layouts (walkable graph, shelves, temperature zones) and the route planner.

    from store_layouts import RoutePlanner, load_layout
    planner = RoutePlanner.for_layout("supermarket")
    route = planner.plan([("sku-1", "milk"), ("sku-2", "frozen pizza")])

Imports no other part of the project. The file format is in docs/store-layouts.md.
"""

from store_layouts.catalog import DEFAULT_LAYOUT, available_layouts, load_layout
from store_layouts.errors import LayoutError
from store_layouts.model import TEMPERATURE_ZONES, Layout, Shelf
from store_layouts.parse import load_layout_file, parse_layout
from store_layouts.routing import SOLVERS, NotFoundItem, Route, RouteItem, RoutePlanner, RouteStop

__all__ = [
    "DEFAULT_LAYOUT",
    "SOLVERS",
    "TEMPERATURE_ZONES",
    "Layout",
    "LayoutError",
    "NotFoundItem",
    "Route",
    "RouteItem",
    "RoutePlanner",
    "RouteStop",
    "Shelf",
    "available_layouts",
    "load_layout",
    "load_layout_file",
    "parse_layout",
]
