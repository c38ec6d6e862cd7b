"""The solvers on synthetic problems (no layout): random points, random temperature ranks,
some stops with several candidate shelves. Every solver must match Held-Karp on small ones."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from store_layouts.routing.local_search import extend, tour_cost
from store_layouts.routing.problem import TourProblem
from store_layouts.routing.solvers import SOLVERS, _insertion, solve_exact

SOLVER_NAMES = sorted(SOLVERS)


def synthetic(seed: int, n_groups: int, max_slots: int = 3) -> TourProblem:
    """Groups of 1..max_slots points on a grid, Manhattan distances (like aisles)."""
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, max_slots + 1, size=n_groups)
    slot_group = np.repeat(np.arange(n_groups), sizes)
    pts = rng.integers(0, 40, size=(len(slot_group), 2)).astype(float)
    dist = np.abs(pts[:, None, :] - pts[None, :, :]).sum(axis=2)
    entrance, checkout = np.array([0.0, 45.0]), np.array([30.0, 45.0])
    return TourProblem(
        dist=dist,
        start=np.abs(pts - entrance).sum(axis=1),
        end=np.abs(pts - checkout).sum(axis=1),
        slot_group=slot_group,
        group_rank=rng.choice([0, 0, 0, 1, 1, 2], size=n_groups),
        group_slots=tuple(np.flatnonzero(slot_group == g) for g in range(n_groups)),
    )


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**31), n_groups=st.integers(0, 9))
@pytest.mark.parametrize("solver", SOLVER_NAMES)
def test_solvers_match_held_karp_on_small_problems(solver: str, seed: int,
                                                    n_groups: int) -> None:
    problem = synthetic(seed, n_groups)
    optimum = solve_exact(problem)
    tour = SOLVERS[solver](problem, rng=np.random.default_rng(seed), time_budget_s=1.0)
    assert problem.is_feasible(tour.slots)
    assert tour.cost == pytest.approx(problem.cost(tour.slots))
    assert tour.cost == pytest.approx(optimum.cost, abs=1e-6)


@pytest.mark.parametrize("solver", ["auto", "local_search"])
@pytest.mark.parametrize("seed", range(3))
def test_heuristics_stay_feasible_and_close_on_large_problems(solver: str, seed: int) -> None:
    problem = synthetic(seed, 40)
    tour = SOLVERS[solver](problem, rng=np.random.default_rng(seed), time_budget_s=0.05)
    assert problem.is_feasible(tour.slots)
    assert tour.cost == pytest.approx(problem.cost(tour.slots))
    # Never worse than the cheapest-insertion start it improves on, and in the same league
    # as a long run (loose: how far a short run gets depends on the machine's load).
    rank = problem.group_rank[problem.slot_group]
    mx, xrank = extend(problem.dist, problem.start, problem.end, rank)
    start = _insertion(mx, xrank, list(problem.group_slots))
    assert tour.cost <= tour_cost(mx, start) + 1e-6
    strong = SOLVERS["auto"](problem, rng=np.random.default_rng(99), time_budget_s=0.5)
    assert tour.cost <= 1.15 * strong.cost


def test_exact_is_exact_by_brute_force() -> None:
    from itertools import permutations, product

    problem = synthetic(7, 6, max_slots=2)
    best = np.inf
    for order in permutations(range(problem.n_groups)):
        ranks = [problem.group_rank[g] for g in order]
        if ranks != sorted(ranks):
            continue
        for slots in product(*(problem.group_slots[g] for g in order)):
            best = min(best, problem.cost(slots))
    assert solve_exact(problem).cost == pytest.approx(best)
