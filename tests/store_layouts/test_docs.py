"""docs/store-layouts.md cannot drift: it names every key the parser reads, every public
name of the package, every solver and every field of a route."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

import store_layouts
from store_layouts import SOLVERS, Route, RouteStop

DOC = (Path(__file__).parents[2] / "docs" / "store-layouts.md").read_text(encoding="utf-8")
PARSER = (Path(store_layouts.__file__).parent / "parse.py").read_text(encoding="utf-8")
FORMAT_KEYS = sorted(set(re.findall(r'(?:_str|_num|_list|_node_ref)\(\w+, "(\w+)"', PARSER))
                     | set(re.findall(r'\.get\("(\w+)"', PARSER)))


def test_parser_keys_were_found() -> None:
    assert {"nodes", "edges", "shelves", "temperature", "categories", "side"} <= set(FORMAT_KEYS)


@pytest.mark.parametrize("key", FORMAT_KEYS)
def test_every_format_key_is_documented(key: str) -> None:
    assert f"`{key}`" in DOC or f'"{key}"' in DOC, f"docs/store-layouts.md lacks {key!r}"


@pytest.mark.parametrize("name", [n for n in store_layouts.__all__ if not n.isupper()]
                         + sorted(SOLVERS))
def test_every_public_name_and_solver_is_documented(name: str) -> None:
    assert name in DOC


@pytest.mark.parametrize("field", [f.name for f in dataclasses.fields(Route)]
                         + [f.name for f in dataclasses.fields(RouteStop)])
def test_every_route_field_is_documented(field: str) -> None:
    assert field in DOC
