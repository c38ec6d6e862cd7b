"""A small helper for writing layout documents in code: walkways as straight lines.

Lines are axis-aligned (our generated stores are rectilinear). At build time every line is
split at each node lying on it and at every crossing with another line, so the generator
only says "there is a walkway from here to there" and "there is a pick point here".
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from store_layouts.model import ShelfSide, TemperatureZone
from store_layouts.parse import FORMAT

# Coordinates are rounded to this many decimals (centimetres) so that node identity by
# position is exact.
COORD_DECIMALS = 2
# Depth of a shelf face drawn on the map, metres from the walkway's centre line outwards.
SHELF_DRAW_OFFSET_M = 1.3
SHELF_DRAW_DEPTH_M = 1.0


def _r(v: float) -> float:
    return round(float(v), COORD_DECIMALS)


@dataclass
class _Line:
    a: tuple[float, float]
    b: tuple[float, float]
    kind: str


@dataclass
class LayoutBuilder:
    id: str
    name: str
    kind: str
    width: float
    height: float
    _nodes: dict[tuple[float, float], str] = field(default_factory=dict)
    _lines: list[_Line] = field(default_factory=list)
    _shelves: list[dict[str, Any]] = field(default_factory=list)
    _entrances: list[dict[str, Any]] = field(default_factory=list)
    _checkouts: list[dict[str, Any]] = field(default_factory=list)
    _zones: list[tuple[str, str, list[_Line]]] = field(default_factory=list)
    _fixtures: list[dict[str, Any]] = field(default_factory=list)

    # --- geometry --------------------------------------------------------------------------
    def node(self, x: float, y: float, node_id: str | None = None) -> str:
        """The node at (x, y), created (named `node_id` or after its position) if new."""
        key = (_r(x), _r(y))
        if key not in self._nodes:
            self._nodes[key] = node_id or f"p{key[0]:g}_{key[1]:g}"
        return self._nodes[key]

    def line(self, x0: float, y0: float, x1: float, y1: float, kind: str = "aisle") -> _Line:
        if _r(x0) != _r(x1) and _r(y0) != _r(y1):
            raise ValueError("walkway lines must be horizontal or vertical")
        line = _Line((_r(x0), _r(y0)), (_r(x1), _r(y1)), kind)
        self.node(*line.a)
        self.node(*line.b)
        self._lines.append(line)
        return line

    # --- contents --------------------------------------------------------------------------
    def shelf(self, shelf_id: str, x: float, y: float, side: ShelfSide, categories: list[str],
              temperature: TemperatureZone, span: float, name: str = "") -> None:
        """A shelf face picked at (x, y), `span` metres long along its walkway."""
        node = self.node(x, y)
        doc: dict[str, Any] = {"id": shelf_id, "node": node, "side": side,
                               "categories": categories, "temperature": temperature}
        if name:
            doc["name"] = name
        self._shelves.append(doc)
        self._fixtures.append(self._shelf_rect(shelf_id, x, y, side, span, temperature))

    def entrance(self, point_id: str, x: float, y: float, name: str = "") -> None:
        self._entrances.append({"id": point_id, "node": self.node(x, y), "name": name})

    def checkout(self, point_id: str, x: float, y: float, name: str = "") -> None:
        self._checkouts.append({"id": point_id, "node": self.node(x, y), "name": name})
        self._fixtures.append({"id": f"{point_id}-counter", "kind": "checkout",
                               "x": _r(x + 0.6), "y": _r(y - 1.5), "width": 0.8, "height": 3.0})

    def zone(self, zone_id: str, name: str, lines: list[_Line]) -> None:
        """A traffic zone made of whole walkway lines."""
        self._zones.append((zone_id, name, lines))

    # --- output ----------------------------------------------------------------------------
    def build(self) -> dict[str, Any]:
        self._add_crossings()
        edges: dict[frozenset[str], dict[str, Any]] = {}
        line_nodes = {id(line): self._nodes_on(line) for line in self._lines}
        for line in self._lines:
            chain = line_nodes[id(line)]
            for u, v in itertools.pairwise(chain):
                edges.setdefault(frozenset((u, v)), {"from": u, "to": v, "kind": line.kind})
        zones = []
        for zone_id, name, lines in self._zones:
            nodes = sorted({n for line in lines for n in line_nodes[id(line)]})
            zones.append({"id": zone_id, "name": name, "nodes": nodes})
        return {
            "format": FORMAT,
            "id": self.id,
            "name": self.name,
            "kind": self.kind,
            "units": "m",
            "bounds": {"min_x": 0, "min_y": 0, "max_x": self.width, "max_y": self.height},
            "outline": [[0, 0], [self.width, 0], [self.width, self.height], [0, self.height]],
            "nodes": [{"id": nid, "x": x, "y": y} for (x, y), nid in self._nodes.items()],
            "edges": list(edges.values()),
            "shelves": self._shelves,
            "entrances": self._entrances,
            "checkouts": self._checkouts,
            "zones": zones,
            "fixtures": self._fixtures,
        }

    def _add_crossings(self) -> None:
        horizontal = [ln for ln in self._lines if ln.a[1] == ln.b[1]]
        vertical = [ln for ln in self._lines if ln.a[0] == ln.b[0] and ln.a[1] != ln.b[1]]
        for h in horizontal:
            (hx0, hy), (hx1, _) = sorted((h.a, h.b))
            for v in vertical:
                (vx, vy0), (_, vy1) = sorted((v.a, v.b))
                if hx0 <= vx <= hx1 and vy0 <= hy <= vy1:
                    self.node(vx, hy)

    def _nodes_on(self, line: _Line) -> list[str]:
        (x0, y0), (x1, y1) = sorted((line.a, line.b))
        on = [(pos, nid) for pos, nid in self._nodes.items()
              if x0 <= pos[0] <= x1 and y0 <= pos[1] <= y1]
        return [nid for _, nid in sorted(on)]

    @staticmethod
    def _shelf_rect(shelf_id: str, x: float, y: float, side: str, span: float,
                    temperature: str) -> dict[str, Any]:
        off, depth, half = SHELF_DRAW_OFFSET_M, SHELF_DRAW_DEPTH_M, span / 2
        if side in ("left", "right"):
            left = x - off - depth if side == "left" else x + off
            rect = (left, y - half, depth, span)
        else:
            top = y - off - depth if side == "up" else y + off
            rect = (x - half, top, span, depth)
        return {"id": shelf_id, "kind": "shelf", "temperature": temperature,
                "x": _r(rect[0]), "y": _r(rect[1]), "width": _r(rect[2]), "height": _r(rect[3])}


def write_layout(doc: dict[str, Any], path: Path) -> None:
    """JSON with one list element per line: small diffs when a generator changes."""
    parts = ["{"]
    items = list(doc.items())
    for i, (key, value) in enumerate(items):
        comma = "," if i < len(items) - 1 else ""
        if isinstance(value, list) and value and isinstance(value[0], dict):
            rows = ",\n".join(f"    {json.dumps(v, ensure_ascii=False)}" for v in value)
            parts.append(f"  {json.dumps(key)}: [\n{rows}\n  ]{comma}")
        else:
            parts.append(f"  {json.dumps(key)}: {json.dumps(value, ensure_ascii=False)}{comma}")
    parts.append("}")
    path.write_text("\n".join(parts) + "\n", encoding="utf-8")
