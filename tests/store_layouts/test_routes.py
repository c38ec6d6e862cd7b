"""Routes through the shipped layouts, for every solver: the invariants every route keeps,
agreement with the Held-Karp optimum on small lists, and property tests."""

from __future__ import annotations

import itertools
import math
import random

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from store_layouts import SOLVERS, Route, RoutePlanner
from store_layouts.model import ZONE_RANK
from store_layouts.routing.solvers import TooLargeForExact, solve_exact

SOLVER_NAMES = sorted(SOLVERS)
# Rounding noise allowed between two computations of the same tour length (metres).
TOLERANCE_M = 1e-6


def random_items(planner: RoutePlanner, n: int, seed: int) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    categories = sorted(planner.layout.categories)
    return [(f"item-{i}", rng.choice(categories)) for i in range(n)]


def check_route(planner: RoutePlanner, route: Route, items: list[tuple[str, str]]) -> None:
    """The invariants of any route, whatever the solver."""
    layout = planner.layout
    known = [(i, c) for i, c in items if layout.shelves_for(c)]
    # Every found item is picked exactly once, at a shelf that holds its category.
    picked = [item for stop in route.stops for item in stop.items]
    assert sorted(i.item_id for i in picked) == sorted(i for i, _ in known)
    for stop in route.stops:
        for item in stop.items:
            shelf = layout.shelves[item.shelf_id]
            assert shelf.node == stop.node
            assert item.category in shelf.categories
    assert sorted(n.item_id for n in route.not_found) == sorted(
        i for i, c in items if not layout.shelves_for(c))
    # Stops are numbered in order; consecutive stops are at different nodes.
    assert [s.number for s in route.stops] == list(range(1, len(route.stops) + 1))
    assert all(a.node != b.node for a, b in zip(route.stops, route.stops[1:], strict=False))
    # Starts at an entrance, ends at a checkout.
    assert route.entrance in layout.entrances
    assert layout.entrances[route.entrance].node == route.start_node
    assert route.checkout in layout.checkouts
    assert layout.checkouts[route.checkout].node == route.end_node
    # Ambient, then chilled, then frozen: frozen last.
    ranks = [ZONE_RANK[s.temperature] for s in route.stops]
    assert ranks == sorted(ranks)
    # The polyline walks graph edges from the entrance through every stop to the checkout.
    nodes = layout.nodes
    start, end = nodes[route.start_node], nodes[route.end_node]
    assert route.polyline[0] == (start.x, start.y)
    assert route.polyline[-1] == (end.x, end.y)
    points = set(route.polyline)
    assert all((s.x, s.y) in points for s in route.stops)
    length = sum(math.dist(a, b) for a, b in zip(route.polyline, route.polyline[1:],
                                                  strict=False))
    assert length == pytest.approx(route.distance_m, abs=0.02)
    assert sum(s.distance_from_previous_m for s in route.stops) <= route.distance_m + 0.02
    assert route.walking_time_s > 0


@pytest.mark.parametrize("solver", SOLVER_NAMES)
@pytest.mark.parametrize("n_items", [1, 6, 15, 40])
def test_route_invariants(planner: RoutePlanner, solver: str, n_items: int) -> None:
    if solver == "exact" and n_items > 15 and planner.layout.id != "convenience":
        pytest.skip("too large for the exact solver by design")
    items = [*random_items(planner, n_items, seed=n_items), ("x-1", "unicorn steaks")]
    route = planner.plan(items, solver=solver)
    check_route(planner, route, items)


@pytest.mark.parametrize("solver", SOLVER_NAMES)
@pytest.mark.parametrize("seed", range(6))
def test_small_lists_match_held_karp(planner: RoutePlanner, solver: str, seed: int) -> None:
    items = random_items(planner, 3 + seed, seed=100 + seed)
    optimum = solve_exact(planner.problem_for(items)).cost
    route = planner.plan(items, solver=solver)
    assert route.cost_m == pytest.approx(optimum, abs=0.01)
    if solver == "exact":
        assert route.optimal


@pytest.mark.parametrize("solver", SOLVER_NAMES)
def test_medium_lists_match_held_karp(planner: RoutePlanner, solver: str) -> None:
    """12-14 items: several stops per temperature, still exactly solvable for reference.
    A budget that never runs out keeps the heuristics independent of the machine's load."""
    for seed in range(3):
        items = random_items(planner, 12 + seed, seed=200 + seed)
        problem = planner.problem_for(items)
        optimum = solve_exact(problem).cost
        route = planner.plan(items, solver=solver, time_budget_s=30.0)
        assert route.cost_m == pytest.approx(optimum, abs=0.01)


@settings(max_examples=12, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
@pytest.mark.parametrize("solver", SOLVER_NAMES)
def test_property_any_list_gives_a_valid_route(planner: RoutePlanner, solver: str,
                                               data: st.DataObject) -> None:
    categories = sorted(planner.layout.categories)
    unknown = st.text(min_size=1, max_size=12).filter(lambda c: not planner.layout.shelves_for(c))
    max_items = 30 if solver != "exact" or planner.layout.id == "convenience" else 10
    picks = data.draw(st.lists(st.one_of(st.sampled_from(categories), unknown),
                               max_size=max_items), label="categories")
    items = [(f"item-{i}", c) for i, c in enumerate(picks)]
    route = planner.plan(items, solver=solver, seed=data.draw(st.integers(0, 2**16)))
    check_route(planner, route, items)


def test_unknown_categories_are_not_found_never_an_error(planner: RoutePlanner) -> None:
    items = [("a", "unicorn steaks"), ("b", ""), ("c", None), ("d", "milk")]
    route = planner.plan(items)  # type: ignore[arg-type]
    assert [n.item_id for n in route.not_found] == ["a", "b", "c"]
    assert all(n.reason == "not found in this store" for n in route.not_found)
    assert [i.item_id for s in route.stops for i in s.items] == ["d"]


def test_empty_list_walks_entrance_to_checkout(planner: RoutePlanner) -> None:
    route = planner.plan([])
    assert route.stops == ()
    check_route(planner, route, [])
    assert route.distance_m > 0


def test_categories_match_case_and_space_insensitively(planner: RoutePlanner) -> None:
    route = planner.plan([("m", "  Frozen   PIZZA ")])
    assert [s.temperature for s in route.stops] == ["frozen"]


def test_route_to_dict_is_json_ready(planner: RoutePlanner) -> None:
    import json

    data = planner.plan(random_items(planner, 5, seed=1)).to_dict()
    assert json.loads(json.dumps(data))["stops"][0]["number"] == 1


def test_exact_solver_refuses_huge_segments() -> None:
    planner = RoutePlanner.for_layout("hypermarket")
    problem = planner.problem_for(random_items(planner, 60, seed=3))
    with pytest.raises(TooLargeForExact):
        solve_exact(problem, max_work=10_000)


def test_unknown_solver_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unknown solver 'fastest'"):
        RoutePlanner.for_layout("convenience").plan([], solver="fastest")


# --- congestion and options ------------------------------------------------------------------

def test_congestion_raises_cost_and_can_be_ignored() -> None:
    base = RoutePlanner.for_layout("supermarket")
    items = [("a", "tea"), ("b", "laundry"), ("c", "frozen pizza")]
    free = base.plan(items)
    crowded = base.with_congestion({zone: 4.0 for zone in base.layout.zones})
    assert crowded is not base and crowded.congestion
    assert crowded.plan(items).cost_m == pytest.approx(4 * free.cost_m, rel=1e-6)
    ignoring = crowded.plan(items, avoid_congestion=False)
    assert ignoring.cost_m == pytest.approx(free.cost_m)
    assert ignoring.walking_time_s > free.walking_time_s  # walking is slower in crowds


def test_congestion_steers_the_route_around_a_crowded_aisle() -> None:
    base = RoutePlanner.for_layout("supermarket")
    items = [("a", "cereal"), ("b", "milk")]
    used = {z for z in base.layout.zones if z.startswith("aisle-")
            if _route_uses_zone(base, base.plan(items), z)}
    assert used
    avoided = base.with_congestion({z: 5.0 for z in used})
    detour = avoided.plan(items)
    assert detour.distance_m >= base.plan(items).distance_m
    check_route(avoided, detour, items)


def _route_uses_zone(planner: RoutePlanner, route: Route, zone_id: str) -> bool:
    zone = planner.layout.zones[zone_id]
    pos = {(n.x, n.y): n.id for n in planner.layout.nodes.values()}
    path = [pos[p] for p in route.polyline]
    return any(a in zone.nodes and b in zone.nodes for a, b in itertools.pairwise(path))


def test_congestion_input_is_checked() -> None:
    base = RoutePlanner.for_layout("convenience")
    assert base.with_congestion({"no-such-zone": 3.0}) is base
    assert base.with_congestion({"aisle-1": 0.5}) is base  # clamped to 1: no change
    assert base.with_congestion({"aisle-1": 99.0}).congestion == {"aisle-1": 5.0}
    with pytest.raises(ValueError, match="aisle-1"):
        base.with_congestion({"aisle-1": float("nan")})
    busy = base.with_traffic({"aisle-1": 6, "aisle-2": 0})
    assert set(busy.congestion) == {"aisle-1"} and busy.congestion["aisle-1"] > 1


def test_start_node_and_open_end() -> None:
    planner = RoutePlanner.for_layout("supermarket")
    start = next(iter(planner.layout.nodes))
    route = planner.plan([("a", "milk")], start_node=start, end_at_checkout=False)
    assert route.start_node == start and route.entrance is None
    assert route.checkout is None and route.end_node == route.stops[-1].node
    with pytest.raises(ValueError, match="not in layout"):
        planner.plan([], start_node="nowhere")


def test_planning_is_deterministic_for_a_seed_given_time() -> None:
    """With a budget that never runs out, the search is bounded by counts alone: the same
    seed gives the same route (with the default budget, a busy machine may search less)."""
    planner = RoutePlanner.for_layout("hypermarket")
    items = random_items(planner, 50, seed=9)
    first, second = (planner.plan(items, seed=4, time_budget_s=30.0) for _ in range(2))
    assert first.stops == second.stops and first.cost_m == second.cost_m
    assert np.isfinite(first.cost_m)
