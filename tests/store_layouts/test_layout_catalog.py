"""The shipped layouts: they load, they stock the whole demo catalog at the right
temperature, and the committed JSON is exactly what the generator writes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edge_agent.demo.taxonomy import CATEGORIES
from store_layouts import available_layouts, load_layout
from store_layouts.catalog import LAYOUT_DIR
from store_layouts.generate.__main__ import GENERATORS
from store_layouts.generate.builder import write_layout

LAYOUTS = ("convenience", "supermarket", "hypermarket")


def test_three_layouts_are_shipped() -> None:
    assert set(available_layouts()) == set(LAYOUTS)


@pytest.mark.parametrize("name", LAYOUTS)
@pytest.mark.parametrize("category", CATEGORIES, ids=lambda c: c.name)
def test_every_category_is_placed_at_its_temperature(name: str, category) -> None:
    shelves = load_layout(name).shelves_for(category.name)
    assert shelves, f"{name}: no shelf holds {category.name!r}"
    for shelf in shelves:
        assert shelf.temperature == category.zone, (
            f"{name}: shelf {shelf.id!r} holds {category.name!r} {shelf.temperature}, "
            f"the catalog says {category.zone}")


def test_layouts_differ_in_kind_and_size() -> None:
    sizes = {name: len(load_layout(name).shelves) for name in LAYOUTS}
    assert sizes["convenience"] < sizes["supermarket"] < sizes["hypermarket"]
    assert len(load_layout("hypermarket").entrances) == 2


def test_supermarket_has_twelve_aisles_and_three_cross_aisles() -> None:
    layout = load_layout("supermarket")
    aisles = [z for z in layout.zones if z.startswith("aisle-")]
    assert len(aisles) == 12
    assert {"back-aisle", "middle-aisle", "front-aisle"} <= set(layout.zones)
    frozen = {s.id.split("-")[0] for s in layout.shelves.values() if s.temperature == "frozen"}
    assert frozen == {"A11", "A12"}
    back = [s for s in layout.shelves.values() if s.id.startswith("back-")]
    assert back and all(s.temperature == "chilled" for s in back)


@pytest.mark.parametrize("name", LAYOUTS)
def test_shipped_json_matches_the_generator(name: str) -> None:
    fresh = json.loads(json.dumps(GENERATORS[name]()))
    shipped = json.loads((LAYOUT_DIR / f"{name}.json").read_text())
    assert fresh == shipped, f"{name}.json is stale: run python -m store_layouts.generate"


def test_generator_writes_files_that_load(tmp_path: Path) -> None:
    for name, build in GENERATORS.items():
        write_layout(build(), tmp_path / f"{name}.json")
        assert load_layout(tmp_path / f"{name}.json").id == name


def test_load_by_path_equals_load_by_name() -> None:
    by_path = load_layout(LAYOUT_DIR / "convenience.json")
    assert by_path.id == "convenience"
    assert by_path.shelves == load_layout("convenience").shelves
