"""Invalid layout files raise LayoutError naming the element at fault."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from store_layouts import LayoutError, load_layout, parse_layout

Doc = dict[str, Any]


def small_store() -> Doc:
    """A valid two-aisle store: entrance -> aisle -> checkout."""
    nodes = {"door": (0, 10), "a1": (0, 5), "a2": (0, 0), "b1": (4, 5), "b2": (4, 0),
             "till": (4, 10)}
    return {
        "format": "store-layout/1", "id": "tiny", "name": "Tiny",
        "bounds": {"min_x": 0, "min_y": 0, "max_x": 10, "max_y": 10},
        "nodes": [{"id": k, "x": x, "y": y} for k, (x, y) in nodes.items()],
        "edges": [{"from": a, "to": b} for a, b in
                  [("door", "a1"), ("a1", "a2"), ("a2", "b2"), ("b2", "b1"), ("b1", "till"),
                   ("a1", "b1")]],
        "shelves": [
            {"id": "A3-left", "node": "a1", "side": "left", "categories": ["milk"],
             "temperature": "chilled"},
            {"id": "B1", "node": "b2", "side": "up", "categories": ["bread", "tea"],
             "temperature": "ambient"},
        ],
        "entrances": [{"id": "door", "node": "door"}],
        "checkouts": [{"id": "till", "node": "till"}],
        "zones": [{"id": "aisle-a", "nodes": ["a1", "a2"]},
                  {"id": "link", "edges": [["a1", "b1"]]}],
    }


def _set(path: list[Any], value: Any) -> Callable[[Doc], None]:
    def edit(doc: Doc) -> None:
        target = doc
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
    return edit


def _append(key: str, value: Any) -> Callable[[Doc], None]:
    return lambda doc: doc[key].append(value)


CASES: list[tuple[str, Callable[[Doc], None], str]] = [
    ("shelf node", _set(["shelves", 0, "node"], "x9"),
     "shelf 'A3-left': node 'x9' is not in the graph"),
    ("edge node", _append("edges", {"from": "a2", "to": "nowhere"}),
     "edge 'a2'-'nowhere': node 'nowhere' is not in the graph"),
    ("duplicate node", _append("nodes", {"id": "a1", "x": 1, "y": 1}),
     "node 'a1': defined twice"),
    ("duplicate edge", _append("edges", {"from": "a2", "to": "a1"}),
     "edge 'a2'-'a1': defined twice"),
    ("self loop", _append("edges", {"from": "a2", "to": "a2"}),
     "edge 'a2'-'a2': an edge must join"),
    ("short edge", _set(["edges", 1, "length"], 2.0),
     "edge 'a1'-'a2': length 2 m is shorter than the straight line"),
    ("zero edge", _set(["edges", 1, "length"], 0), "edge 'a1'-'a2': length must be positive"),
    ("outside bounds", _set(["nodes", 0, "x"], 50), "node 'door': (50.0, 10.0) is outside"),
    ("bad coordinate", _set(["nodes", 0, "y"], "ten"), "node 'door': 'y' must be a finite number"),
    ("bad temperature", _set(["shelves", 1, "temperature"], "warm"),
     "shelf 'B1': temperature 'warm' is not one of ambient, chilled, frozen"),
    ("bad side", _set(["shelves", 1, "side"], "north"), "shelf 'B1': side 'north' is not one of"),
    ("no categories", _set(["shelves", 1, "categories"], []), "shelf 'B1': 'categories' must be"),
    ("mixed temperature", _append("shelves", {"id": "C1", "node": "b1", "side": "left",
                                              "categories": ["Milk"], "temperature": "ambient"}),
     "shelf 'C1': category 'Milk' is ambient here but chilled on shelf 'A3-left'"),
    ("duplicate shelf", _append("shelves", {"id": "B1", "node": "b1", "side": "left",
                                            "categories": ["tea"], "temperature": "ambient"}),
     "shelf 'B1': defined twice"),
    ("checkout node", _set(["checkouts", 0, "node"], "x1"), "checkout 'till': node 'x1' is not"),
    ("no entrance", _set(["entrances"], []), "entrances: the layout needs at least one entrance"),
    ("zone node", _set(["zones", 0, "nodes"], ["a1", "q"]), "zone 'aisle-a': node 'q' is not"),
    ("zone edge", _set(["zones", 1, "edges"], [["a2", "b1"]]),
     "zone 'link': edge 'a2'-'b1' is not in the graph"),
    ("unreachable shelf", lambda d: (d["nodes"].append({"id": "island", "x": 9, "y": 9}),
                                     d["shelves"][1].update(node="island")),
     "shelf 'B1': node 'island' cannot be reached from entrance 'door'"),
    ("missing id", _append("shelves", {"node": "b1"}), "shelves[2]: 'id' must be a non-empty"),
    ("wrong format", _set(["format"], "store-layout/0"), "'format' must be 'store-layout/1'"),
]


def test_the_small_store_is_valid() -> None:
    layout = parse_layout(small_store())
    assert [s.id for s in layout.shelves_for(" MILK ")] == ["A3-left"]
    assert layout.edges[1].length == pytest.approx(5.0)  # euclidean when not given


@pytest.mark.parametrize(("edit", "message"), [(c[1], c[2]) for c in CASES],
                         ids=[c[0] for c in CASES])
def test_invalid_layout_names_the_element(edit: Callable[[Doc], None], message: str) -> None:
    doc = copy.deepcopy(small_store())
    edit(doc)
    with pytest.raises(LayoutError) as err:
        parse_layout(doc)
    assert message in str(err.value)


def test_unreadable_files(tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(LayoutError, match="is not readable JSON"):
        load_layout(broken)
    with pytest.raises(LayoutError, match="does not exist"):
        load_layout(tmp_path / "missing.json")
    with pytest.raises(LayoutError, match="neither a shipped layout"):
        load_layout("megastore")


def test_a_valid_file_loads_by_path(tmp_path: Path) -> None:
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(small_store()))
    assert load_layout(path).id == "tiny"
