"""Reading and validating layout files (format `store-layout/1`, see docs/store-layouts.md).

Every error is a `LayoutError` whose message starts with the element at fault, e.g.
``shelf 'A3-left': node 'x9' is not in the graph``.
"""

from __future__ import annotations

import json
import logging
import math
from collections import defaultdict, deque
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from store_layouts.errors import LayoutError
from store_layouts.model import (
    SHELF_SIDES,
    TEMPERATURE_ZONES,
    AccessPoint,
    Bounds,
    Edge,
    Fixture,
    Layout,
    Node,
    Shelf,
    TemperatureZone,
    Zone,
    category_key,
)

logger = logging.getLogger(__name__)

FORMAT = "store-layout/1"
# A given edge length may not be shorter than the straight line between its ends; this much
# slack (metres) absorbs rounding in files written by other tools.
LENGTH_TOLERANCE_M = 0.01


def load_layout_file(path: str | Path) -> Layout:
    path = Path(path)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise LayoutError(f"layout file {str(path)!r} does not exist") from exc
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise LayoutError(f"layout file {str(path)!r} is not readable JSON: {exc}") from exc
    return parse_layout(raw, source=str(path))


def parse_layout(raw: Any, source: str = "<layout>") -> Layout:
    """Validate a decoded layout document and build the `Layout`."""
    doc = _mapping(raw, source)
    if doc.get("format") != FORMAT:
        raise LayoutError(f"{source}: 'format' must be {FORMAT!r}, got {doc.get('format')!r}")
    layout_id = _str(doc, "id", source)
    where = f"layout {layout_id!r}"
    bounds = _bounds(_mapping(doc.get("bounds"), f"{where}: 'bounds'"), where)
    outline = tuple(_point(p, f"{where}: outline[{i}]") for i, p in
                    enumerate(_list(doc, "outline", where, required=False)))
    nodes = _nodes(_list(doc, "nodes", where), bounds)
    edges = _edges(_list(doc, "edges", where), nodes)
    shelves = _shelves(_list(doc, "shelves", where), nodes)
    entrances = _access_points(_list(doc, "entrances", where), nodes, "entrance")
    checkouts = _access_points(_list(doc, "checkouts", where), nodes, "checkout")
    zones = _zones(_list(doc, "zones", where, required=False), nodes, edges)
    fixtures = tuple(_fixture(f, i) for i, f in
                     enumerate(_list(doc, "fixtures", where, required=False)))
    _check_connected(nodes, edges, shelves, entrances, checkouts)
    by_category = _index_categories(shelves)
    logger.debug("layout %s: %d nodes, %d edges, %d shelves", layout_id, len(nodes),
                 len(edges), len(shelves))
    return Layout(
        id=layout_id, name=str(doc.get("name", layout_id)), kind=str(doc.get("kind", "")),
        bounds=bounds, outline=outline, nodes=nodes, edges=edges, shelves=shelves,
        entrances=entrances, checkouts=checkouts, zones=zones, fixtures=fixtures,
        shelves_by_category=by_category,
    )


# --- elements ------------------------------------------------------------------------------

def _bounds(raw: Mapping[str, Any], where: str) -> Bounds:
    b = Bounds(*(_num(raw, k, f"{where}: bounds") for k in ("min_x", "min_y", "max_x", "max_y")))
    if b.max_x <= b.min_x or b.max_y <= b.min_y:
        raise LayoutError(f"{where}: bounds must have max_x > min_x and max_y > min_y")
    return b


def _nodes(raw: list[Any], bounds: Bounds) -> dict[str, Node]:
    nodes: dict[str, Node] = {}
    for i, item in enumerate(raw):
        obj = _mapping(item, f"nodes[{i}]")
        node_id = _str(obj, "id", f"nodes[{i}]")
        where = f"node {node_id!r}"
        if node_id in nodes:
            raise LayoutError(f"{where}: defined twice")
        node = Node(node_id, _num(obj, "x", where), _num(obj, "y", where))
        if not bounds.contains(node.x, node.y):
            raise LayoutError(f"{where}: ({node.x}, {node.y}) is outside the layout bounds")
        nodes[node_id] = node
    if not nodes:
        raise LayoutError("nodes: the graph has no nodes")
    return nodes


def _edges(raw: list[Any], nodes: Mapping[str, Node]) -> tuple[Edge, ...]:
    edges: list[Edge] = []
    seen: set[frozenset[str]] = set()
    for i, item in enumerate(raw):
        obj = _mapping(item, f"edges[{i}]")
        a, b = _str(obj, "from", f"edges[{i}]"), _str(obj, "to", f"edges[{i}]")
        where = f"edge {a!r}-{b!r}"
        for end in (a, b):
            if end not in nodes:
                raise LayoutError(f"{where}: node {end!r} is not in the graph")
        if a == b:
            raise LayoutError(f"{where}: an edge must join two different nodes")
        if frozenset((a, b)) in seen:
            raise LayoutError(f"{where}: defined twice")
        straight = math.dist((nodes[a].x, nodes[a].y), (nodes[b].x, nodes[b].y))
        length = _num(obj, "length", where) if "length" in obj else straight
        if length <= 0:
            raise LayoutError(f"{where}: length must be positive (are both ends at one point?)")
        if length < straight - LENGTH_TOLERANCE_M:
            raise LayoutError(f"{where}: length {length:g} m is shorter than the straight line "
                              f"between its ends ({straight:.2f} m)")
        seen.add(frozenset((a, b)))
        edges.append(Edge(a, b, float(length), str(obj.get("kind", "aisle"))))
    if not edges and len(nodes) > 1:
        raise LayoutError("edges: the graph has no edges")
    return tuple(edges)


def _shelves(raw: list[Any], nodes: Mapping[str, Node]) -> dict[str, Shelf]:
    shelves: dict[str, Shelf] = {}
    for i, item in enumerate(raw):
        obj = _mapping(item, f"shelves[{i}]")
        shelf_id = _str(obj, "id", f"shelves[{i}]")
        where = f"shelf {shelf_id!r}"
        if shelf_id in shelves:
            raise LayoutError(f"{where}: defined twice")
        node = _node_ref(obj, "node", where, nodes)
        side = _str(obj, "side", where)
        if side not in SHELF_SIDES:
            raise LayoutError(f"{where}: side {side!r} is not one of {', '.join(SHELF_SIDES)}")
        zone = _temperature(obj, where)
        cats = obj.get("categories")
        if not isinstance(cats, list) or not cats:
            raise LayoutError(f"{where}: 'categories' must be a non-empty list of names")
        for cat in cats:
            if not isinstance(cat, str) or not cat.strip():
                raise LayoutError(f"{where}: category {cat!r} is not a non-empty string")
        shelves[shelf_id] = Shelf(shelf_id, node, side, tuple(cats), zone,  # type: ignore[arg-type]
                                  str(obj.get("name", "")))
    if not shelves:
        raise LayoutError("shelves: the layout has no shelves")
    return shelves


def _access_points(raw: list[Any], nodes: Mapping[str, Node], kind: str) -> dict[str, AccessPoint]:
    points: dict[str, AccessPoint] = {}
    for i, item in enumerate(raw):
        obj = _mapping(item, f"{kind}s[{i}]")
        point_id = _str(obj, "id", f"{kind}s[{i}]")
        where = f"{kind} {point_id!r}"
        if point_id in points:
            raise LayoutError(f"{where}: defined twice")
        points[point_id] = AccessPoint(point_id, _node_ref(obj, "node", where, nodes),
                                       str(obj.get("name", "")))
    if not points:
        raise LayoutError(f"{kind}s: the layout needs at least one {kind}")
    return points


def _zones(raw: list[Any], nodes: Mapping[str, Node], edges: tuple[Edge, ...]) -> dict[str, Zone]:
    edge_keys = {e.key for e in edges}
    zones: dict[str, Zone] = {}
    for i, item in enumerate(raw):
        obj = _mapping(item, f"zones[{i}]")
        zone_id = _str(obj, "id", f"zones[{i}]")
        where = f"zone {zone_id!r}"
        if zone_id in zones:
            raise LayoutError(f"{where}: defined twice")
        for key in ("nodes", "edges"):
            if not isinstance(obj.get(key, []), list):
                raise LayoutError(f"{where}: {key!r} must be a list")
        zone_nodes = []
        for ref in obj.get("nodes", []):
            if ref not in nodes:
                raise LayoutError(f"{where}: node {ref!r} is not in the graph")
            zone_nodes.append(ref)
        zone_edges = []
        for pair in obj.get("edges", []):
            if not (isinstance(pair, list) and len(pair) == 2):
                raise LayoutError(f"{where}: edge {pair!r} must be a [from, to] pair")
            if frozenset(pair) not in edge_keys:
                raise LayoutError(f"{where}: edge {pair[0]!r}-{pair[1]!r} is not in the graph")
            zone_edges.append(frozenset(pair))
        if not zone_nodes and not zone_edges:
            raise LayoutError(f"{where}: a zone needs nodes or edges")
        zones[zone_id] = Zone(zone_id, frozenset(zone_nodes), frozenset(zone_edges),
                              str(obj.get("name", "")))
    return zones


def _fixture(raw: Any, i: int) -> Fixture:
    obj = _mapping(raw, f"fixtures[{i}]")
    fixture_id = _str(obj, "id", f"fixtures[{i}]")
    where = f"fixture {fixture_id!r}"
    zone = _temperature(obj, where) if obj.get("temperature") is not None else None
    width, height = _num(obj, "width", where), _num(obj, "height", where)
    if width <= 0 or height <= 0:
        raise LayoutError(f"{where}: width and height must be positive")
    return Fixture(fixture_id, _num(obj, "x", where), _num(obj, "y", where), width, height,
                   str(obj.get("kind", "gondola")), zone)


# --- whole-layout checks -------------------------------------------------------------------

def _check_connected(nodes: Mapping[str, Node], edges: tuple[Edge, ...],
                     shelves: Mapping[str, Shelf], entrances: Mapping[str, AccessPoint],
                     checkouts: Mapping[str, AccessPoint]) -> None:
    """Every shelf and checkout must be reachable from the (first) entrance."""
    neighbours: dict[str, list[str]] = defaultdict(list)
    for e in edges:
        neighbours[e.a].append(e.b)
        neighbours[e.b].append(e.a)
    first = next(iter(entrances.values()))
    seen = {first.node}
    queue = deque([first.node])
    while queue:
        for nxt in neighbours[queue.popleft()]:
            if nxt not in seen:
                seen.add(nxt)
                queue.append(nxt)
    named = [*(("entrance", p.id, p.node) for p in entrances.values()),
             *(("checkout", p.id, p.node) for p in checkouts.values()),
             *(("shelf", s.id, s.node) for s in shelves.values())]
    for kind, element_id, node in named:
        if node not in seen:
            raise LayoutError(f"{kind} {element_id!r}: node {node!r} cannot be reached from "
                              f"entrance {first.id!r}")
    for node_id in nodes:
        if node_id not in seen:
            raise LayoutError(f"node {node_id!r}: cannot be reached from entrance {first.id!r}")


def _index_categories(shelves: Mapping[str, Shelf]) -> dict[str, tuple[Shelf, ...]]:
    """Category -> shelves; one category must keep one temperature zone on every shelf."""
    index: dict[str, list[Shelf]] = defaultdict(list)
    for shelf in shelves.values():
        for cat in shelf.categories:
            key = category_key(cat)
            if index[key] and index[key][0].temperature != shelf.temperature:
                first = index[key][0]
                raise LayoutError(f"shelf {shelf.id!r}: category {cat!r} is {shelf.temperature} "
                                  f"here but {first.temperature} on shelf {first.id!r}")
            if shelf not in index[key]:
                index[key].append(shelf)
    return {key: tuple(value) for key, value in index.items()}


# --- primitive readers ---------------------------------------------------------------------

def _mapping(raw: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(raw, Mapping):
        raise LayoutError(f"{where}: expected a JSON object, got {type(raw).__name__}")
    return raw


def _list(doc: Mapping[str, Any], key: str, where: str, required: bool = True) -> list[Any]:
    value = doc.get(key)
    if value is None and not required:
        return []
    if not isinstance(value, list):
        raise LayoutError(f"{where}: {key!r} must be a list")
    return value


def _str(obj: Mapping[str, Any], key: str, where: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not value:
        raise LayoutError(f"{where}: {key!r} must be a non-empty string, got {value!r}")
    return value


def _num(obj: Mapping[str, Any], key: str, where: str) -> float:
    value = obj.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise LayoutError(f"{where}: {key!r} must be a finite number, got {value!r}")
    return float(value)


def _point(raw: Any, where: str) -> tuple[float, float]:
    if (not isinstance(raw, list) or len(raw) != 2
            or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in raw)):
        raise LayoutError(f"{where}: a point must be [x, y], got {raw!r}")
    return float(raw[0]), float(raw[1])


def _node_ref(obj: Mapping[str, Any], key: str, where: str, nodes: Mapping[str, Node]) -> str:
    ref = _str(obj, key, where)
    if ref not in nodes:
        raise LayoutError(f"{where}: node {ref!r} is not in the graph")
    return ref


def _temperature(obj: Mapping[str, Any], where: str) -> TemperatureZone:
    zone = obj.get("temperature")
    if zone not in TEMPERATURE_ZONES:
        raise LayoutError(f"{where}: temperature {zone!r} is not one of "
                          f"{', '.join(TEMPERATURE_ZONES)}")
    return zone  # type: ignore[return-value]
