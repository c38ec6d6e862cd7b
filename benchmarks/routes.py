"""Route planner quality and speed: `python benchmarks/routes.py [--json PATH] [--quick]`.

On the supermarket and hypermarket layouts, random shopping lists of 15, 25 and 60 items
(categories drawn uniformly from the demo taxonomy, with repeats, so several items can share
a shelf), planned with the frozen-last rule. For every solver: mean and max gap to the
reference optimum and p50/p99 planning time of the full `RoutePlanner.plan` call (grouping,
distance lookup, solving, polyline).

The reference is the Held-Karp optimum when every temperature segment is small enough for
the exact solver, else the best of OR-Tools guided local search with a long time limit and
every solver's own tour ("best known"). OR-Tools with a 100 ms limit runs as a comparison;
its time includes building the model. Times are wall clock; the CPU columns are this
process's CPU time (`time.process_time`), which a busy shared machine inflates much less.
Needs `ortools` (benchmark-only: the `bench` extra).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from ortools.constraint_solver import pywrapcp, routing_enums_pb2

from edge_agent.demo.taxonomy import CATEGORIES
from store_layouts import RoutePlanner
from store_layouts.routing.problem import TourProblem
from store_layouts.routing.solvers import TooLargeForExact, solve_exact

logger = logging.getLogger("benchmarks.routes")

LAYOUTS = ("supermarket", "hypermarket")
SIZES = (15, 25, 60)
SOLVERS = ("auto", "local_search")
INSTANCES, QUICK_INSTANCES = 30, 6
# Timing repeats per instance and solver: more samples for the p99 (results are identical).
REPEATS = 3
# OR-Tools budgets: the long run is the reference where exact is out of reach.
REFERENCE_LIMIT_S, QUICK_REFERENCE_LIMIT_S = 10.0, 1.0
COMPARISON_LIMIT_S = 0.1
# OR-Tools wants integer arc costs: millimetres.
MM_PER_M = 1000
# Penalty for skipping a whole group (never worth it): far above any tour length.
SKIP_PENALTY = 10**12
SEED = 20261121


@dataclass
class Cell:
    layout: str
    items: int
    stops: list[int] = field(default_factory=list)
    exact_refs: int = 0
    gaps: dict[str, list[float]] = field(default_factory=dict)
    times_ms: dict[str, list[float]] = field(default_factory=dict)
    cpu_ms: dict[str, list[float]] = field(default_factory=dict)


def solve_ortools(problem: TourProblem, limit_s: float) -> list[int]:
    """The same problem for OR-Tools: node 0 is a depot standing for both the start (arcs
    from it cost `start`) and the end (arcs to it cost `end`); each group is a disjunction
    of its slots; a 'rank' dimension with slack forces non-decreasing temperature ranks."""
    k = len(problem.slot_group)
    arcs = np.zeros((k + 1, k + 1))
    arcs[1:, 1:] = problem.dist
    arcs[0, 1:] = problem.start
    arcs[1:, 0] = problem.end
    matrix = np.rint(arcs * MM_PER_M).astype(np.int64).tolist()
    manager = pywrapcp.RoutingIndexManager(k + 1, 1, 0)
    routing = pywrapcp.RoutingModel(manager)
    callback = routing.RegisterTransitMatrix(matrix)
    routing.SetArcCostEvaluatorOfAllVehicles(callback)
    max_rank = int(problem.group_rank.max()) if k else 0
    zero = routing.RegisterTransitMatrix([[0] * (k + 1) for _ in range(k + 1)])
    routing.AddDimension(zero, max_rank, max_rank, True, "rank")
    ranks = routing.GetDimensionOrDie("rank")
    for slot in range(k):
        r = int(problem.group_rank[problem.slot_group[slot]])
        ranks.CumulVar(manager.NodeToIndex(slot + 1)).SetRange(r, r)
    for slots in problem.group_slots:
        if len(slots) > 1:
            routing.AddDisjunction([manager.NodeToIndex(int(s) + 1) for s in slots],
                                   SKIP_PENALTY, 1)
    params = pywrapcp.DefaultRoutingSearchParameters()
    # Cheapest-arc path building can paint itself into a corner with the rank constraint and
    # disjunctions; insertion-based construction always completes.
    params.first_solution_strategy = (
        routing_enums_pb2.FirstSolutionStrategy.PARALLEL_CHEAPEST_INSERTION)
    params.local_search_metaheuristic = (
        routing_enums_pb2.LocalSearchMetaheuristic.GUIDED_LOCAL_SEARCH)
    params.time_limit.FromMilliseconds(int(limit_s * 1000))
    solution = routing.SolveWithParameters(params)
    if solution is None:
        raise RuntimeError("OR-Tools found no solution")
    order, index = [], routing.Start(0)
    while not routing.IsEnd(index):
        node = manager.IndexToNode(index)
        if node:
            order.append(node - 1)
        index = solution.Value(routing.NextVar(index))
    if not problem.is_feasible(order):
        raise RuntimeError("OR-Tools returned an infeasible tour")
    return order


def random_items(rng: np.random.Generator, n: int) -> list[tuple[str, str]]:
    picks = rng.integers(0, len(CATEGORIES), size=n)
    return [(f"item-{i}", CATEGORIES[int(c)].name) for i, c in enumerate(picks)]


def run_cell(planner: RoutePlanner, layout: str, n: int, instances: int, ref_limit: float,
             rng: np.random.Generator) -> Cell:
    cell = Cell(layout, n)
    names = [*SOLVERS, "ortools_100ms"]
    for name in names:
        cell.gaps[name], cell.times_ms[name], cell.cpu_ms[name] = [], [], []
    for _ in range(instances):
        items = random_items(rng, n)
        problem = planner.problem_for(items)
        cell.stops.append(problem.n_groups)
        costs: dict[str, float] = {}
        for name in SOLVERS:
            for rep in range(REPEATS):
                t0, c0 = time.perf_counter(), time.process_time()
                route = planner.plan(items, solver=name)
                cell.times_ms[name].append((time.perf_counter() - t0) * 1e3)
                cell.cpu_ms[name].append((time.process_time() - c0) * 1e3)
                if rep == 0:
                    costs[name] = route.cost_m
        t0, c0 = time.perf_counter(), time.process_time()
        quick = solve_ortools(problem, COMPARISON_LIMIT_S)
        cell.times_ms["ortools_100ms"].append((time.perf_counter() - t0) * 1e3)
        cell.cpu_ms["ortools_100ms"].append((time.process_time() - c0) * 1e3)
        costs["ortools_100ms"] = problem.cost(quick)
        try:
            reference = solve_exact(problem).cost
            cell.exact_refs += 1
        except TooLargeForExact:
            reference = min(problem.cost(solve_ortools(problem, ref_limit)), *costs.values())
        for name in names:
            cell.gaps[name].append(100.0 * (costs[name] - reference) / reference)
    return cell


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) if values else float("nan")


def summarise(cells: list[Cell], instances: int, ref_limit: float,
              load: tuple[float, float]) -> dict:
    rows = []
    for cell in cells:
        for name in cell.gaps:
            gaps, times, cpu = cell.gaps[name], cell.times_ms[name], cell.cpu_ms[name]
            rows.append({
                "layout": cell.layout, "items": cell.items, "solver": name,
                "mean_stops": round(statistics.fmean(cell.stops), 1),
                "mean_gap_pct": round(statistics.fmean(gaps), 3),
                "max_gap_pct": round(max(gaps), 3),
                "p50_ms": round(percentile(times, 50), 2),
                "p99_ms": round(percentile(times, 99), 2),
                "cpu_p50_ms": round(percentile(cpu, 50), 2),
                "cpu_p99_ms": round(percentile(cpu, 99), 2),
                "reference": f"exact {cell.exact_refs}/{len(cell.stops)}",
            })
    return {
        "instances_per_cell": instances, "timing_repeats": REPEATS,
        "reference_limit_s": ref_limit, "comparison_limit_s": COMPARISON_LIMIT_S,
        "python": platform.python_version(), "machine": platform.machine(),
        "cpus": os.cpu_count(), "load_average_1min_start_end": load, "rows": rows,
    }


def print_table(summary: dict) -> None:
    header = ("layout", "items", "stops", "solver", "mean gap %", "max gap %", "p50 ms",
              "p99 ms", "CPU p50 ms", "CPU p99 ms", "reference")
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" for _ in header) + "|")
    for r in summary["rows"]:
        print(f"| {r['layout']} | {r['items']} | {r['mean_stops']} | {r['solver']} | "
              f"{r['mean_gap_pct']:.2f} | {r['max_gap_pct']:.2f} | {r['p50_ms']:.1f} | "
              f"{r['p99_ms']:.1f} | {r['cpu_p50_ms']:.1f} | {r['cpu_p99_ms']:.1f} | "
              f"{r['reference']} |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Route planner benchmark")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON here")
    parser.add_argument("--quick", action="store_true",
                        help=f"{QUICK_INSTANCES} instances per cell, {QUICK_REFERENCE_LIMIT_S:g} s "
                             "OR-Tools reference")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    instances = QUICK_INSTANCES if args.quick else INSTANCES
    ref_limit = QUICK_REFERENCE_LIMIT_S if args.quick else REFERENCE_LIMIT_S
    rng = np.random.default_rng(SEED)
    load_start = os.getloadavg()[0]
    cells = []
    for layout in LAYOUTS:
        planner = RoutePlanner.for_layout(layout)
        planner.plan([("warm-up", "milk")])
        for n in SIZES:
            t0 = time.perf_counter()
            cells.append(run_cell(planner, layout, n, instances, ref_limit, rng))
            logger.info("%s, %d items: %.0f s", layout, n, time.perf_counter() - t0)
    summary = summarise(cells, instances, ref_limit, (load_start, os.getloadavg()[0]))
    print_table(summary)
    print(f"\n{summary['cpus']} CPUs, 1-min load average {load_start:.1f} at start, "
          f"{summary['load_average_1min_start_end'][1]:.1f} at end")
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
