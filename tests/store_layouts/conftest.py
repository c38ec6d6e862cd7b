"""Shared fixtures: one planner per shipped layout (building one runs Dijkstra, so share)."""

from __future__ import annotations

import pytest

from store_layouts import RoutePlanner, available_layouts


@pytest.fixture(scope="session", params=available_layouts())
def planner(request: pytest.FixtureRequest) -> RoutePlanner:
    return RoutePlanner.for_layout(request.param)
