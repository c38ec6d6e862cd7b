"""The route planner: requested items in, an ordered walk through the store out.

    planner = RoutePlanner.for_layout("supermarket")       # cached per layout
    route = planner.plan([("sku-1", "milk"), ("sku-2", "frozen pizza")])
    planner = planner.with_congestion({"aisle-03": 2.5})   # after zone.traffic events
"""

from __future__ import annotations

import functools
import logging
import math
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from store_layouts.catalog import load_layout
from store_layouts.model import ZONE_RANK, Layout
from store_layouts.routing.graph import DistanceTable, StoreGraph
from store_layouts.routing.problem import Tour, TourProblem
from store_layouts.routing.result import NotFoundItem, Route, RouteItem, RouteStop
from store_layouts.routing.solvers import DEFAULT_TIME_BUDGET_S, SOLVERS

logger = logging.getLogger(__name__)

# Shoppers pushing a trolley and looking at shelves move at ~0.8 m/s, well below the
# ~1.3 m/s of free walking.
WALKING_SPEED_M_S = 0.8
# Stopping at a shelf and finding the right spot on it.
PICK_SECONDS_PER_STOP = 15.0
# Choosing and taking one product once there.
PICK_SECONDS_PER_ITEM = 8.0
# Congestion can slow walking down but not speed it up, and beyond 5x a shopper would rather
# wait than walk on; factors are clamped to this range.
MIN_CONGESTION, MAX_CONGESTION = 1.0, 5.0
# People per metre of walkway at which a zone's walking cost doubles (about one shopper
# with a trolley every 2.5 m of aisle makes passing slow).
PEOPLE_PER_M_DOUBLING = 0.4


@dataclass(frozen=True)
class _Group:
    temperature: str
    nodes: tuple[int, ...]  # candidate pick nodes (graph indices)
    items: tuple[tuple[str, str], ...]  # (item_id, category)


class RoutePlanner:
    """Shortest walks through one layout under one set of congestion factors (immutable)."""

    def __init__(self, layout: Layout, congestion: Mapping[str, float] | None = None, *,
                 graph: StoreGraph | None = None, base: RoutePlanner | None = None) -> None:
        self.layout = layout
        self.graph = graph or StoreGraph.from_layout(layout)
        self.congestion: dict[str, float] = dict(congestion or {})
        self.table = DistanceTable(self.graph, self.graph.weights(self.congestion))
        # The uncongested planner, for plan(avoid_congestion=False).
        self._base_planner = base if self.congestion else self

    @property
    def _base(self) -> RoutePlanner:
        if self._base_planner is None:
            self._base_planner = RoutePlanner(self.layout, graph=self.graph)
        return self._base_planner

    @classmethod
    def for_layout(cls, name_or_path: str | Path) -> RoutePlanner:
        """The uncongested planner of a shipped layout (by name) or a layout file, cached."""
        return _planner_for(str(name_or_path))

    # --- congestion ------------------------------------------------------------------------
    def with_congestion(self, factors: Mapping[str, float]) -> RoutePlanner:
        """A planner whose walking cost in each zone is multiplied by its factor.

        Factors replace (not add to) the current ones; unknown zone ids are logged and
        ignored (sensors may name zones this layout does not have); factors are clamped to
        [1, 5]. Costs one Dijkstra per key node (milliseconds; see the docs)."""
        clean: dict[str, float] = {}
        for zone_id, value in factors.items():
            if zone_id not in self.layout.zones:
                logger.warning("layout %s: ignoring congestion for unknown zone %r",
                               self.layout.id, zone_id)
                continue
            if not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
                raise ValueError(f"zone {zone_id!r}: congestion factor {value!r} is not a "
                                 f"finite non-negative number")
            factor = min(MAX_CONGESTION, max(MIN_CONGESTION, float(value)))
            if factor > MIN_CONGESTION:
                clean[zone_id] = factor
        if clean == self.congestion:
            return self
        return RoutePlanner(self.layout, clean, graph=self.graph, base=self._base)

    def with_traffic(self, people: Mapping[str, float]) -> RoutePlanner:
        """`with_congestion` from `zone.traffic` head counts: the factor grows linearly with
        people per metre of walkway in the zone (doubling at PEOPLE_PER_M_DOUBLING)."""
        factors = {}
        for zone_id, count in people.items():
            edges = self.graph.zone_edges.get(zone_id)
            length = float(self.graph.edge_length[edges].sum()) if edges is not None else 0.0
            if length > 0:
                factors[zone_id] = 1.0 + max(0.0, float(count)) / length / PEOPLE_PER_M_DOUBLING
        return self.with_congestion(factors)

    # --- planning --------------------------------------------------------------------------
    def plan(self, items: Iterable[tuple[str, str]], *, solver: str = "auto",
             avoid_congestion: bool = True, start_node: str | None = None,
             end_at_checkout: bool = True, seed: int = 0,
             time_budget_s: float = DEFAULT_TIME_BUDGET_S) -> Route:
        """Plan a walk past the shelves of every requested (item_id, category).

        Starts at the best entrance (or at `start_node`), visits ambient, then chilled,
        then frozen stops, and ends at the best checkout (or at the last stop). Items whose
        category no shelf holds come back in `not_found`; they never raise."""
        t0 = time.perf_counter()
        if solver not in SOLVERS:
            raise ValueError(f"unknown solver {solver!r}; choose from {', '.join(SOLVERS)}")
        planner = self if avoid_congestion else self._base
        groups, not_found = self._group(items)
        problem, slot_node, starts, ends = planner._problem(groups, start_node, end_at_checkout)
        rng = np.random.default_rng(seed)
        tour = SOLVERS[solver](problem, rng=rng, time_budget_s=time_budget_s)
        route = self._route(planner, tour, groups, slot_node, starts, ends, not_found, solver,
                            start_node, end_at_checkout, t0)
        logger.debug("layout %s: %d stops, %.1f m, %.1f ms (%s)", self.layout.id,
                     len(route.stops), route.distance_m, route.planning_ms, solver)
        return route

    def problem_for(self, items: Iterable[tuple[str, str]]) -> TourProblem:
        """The numeric problem `plan` would solve (for benchmarks and tests)."""
        return self._problem(self._group(items)[0], None, True)[0]

    def _group(self, items: Iterable[tuple[str, str]]) -> tuple[list[_Group], list[NotFoundItem]]:
        by_key: dict[tuple[str, tuple[int, ...]], list[tuple[str, str]]] = {}
        not_found = []
        for item in items:
            item_id, category = str(item[0]), item[1]
            shelves = self.layout.shelves_for(category) if isinstance(category, str) else ()
            if not shelves:
                not_found.append(NotFoundItem(item_id, str(category)))
                continue
            nodes = tuple(sorted({self.graph.index[s.node] for s in shelves}))
            by_key.setdefault((shelves[0].temperature, nodes), []).append((item_id, category))
        groups = [_Group(temp, nodes, tuple(members)) for (temp, nodes), members in by_key.items()]
        return groups, not_found

    def _problem(self, groups: Sequence[_Group], start_node: str | None,
                 end_at_checkout: bool) -> tuple[TourProblem, np.ndarray, np.ndarray, np.ndarray]:
        slot_node = np.array([n for g in groups for n in g.nodes], dtype=np.int64)
        slot_group = np.array([i for i, g in enumerate(groups) for _ in g.nodes], dtype=np.int64)
        group_slots = tuple(np.flatnonzero(slot_group == i) for i in range(len(groups)))
        ranks = np.array([ZONE_RANK[g.temperature] for g in groups], dtype=np.int64)
        dist = self.table.matrix(slot_node, slot_node)
        starts = self._start_nodes(start_node)
        from_start = self.table.matrix(starts, slot_node)
        checkouts = np.array([self.graph.index[c.node] for c in self.layout.checkouts.values()])
        to_end = (self.table.matrix(checkouts, slot_node) if end_at_checkout
                  else np.zeros((1, len(slot_node))))
        problem = TourProblem(dist, from_start.min(axis=0), to_end.min(axis=0), slot_group,
                              ranks, group_slots, from_start if len(from_start) > 1 else None)
        return problem, slot_node, starts, checkouts if end_at_checkout else np.array([], int)

    def _start_nodes(self, start_node: str | None) -> np.ndarray:
        if start_node is None:
            return np.array([self.graph.index[e.node] for e in self.layout.entrances.values()])
        if start_node in self.layout.entrances:
            return np.array([self.graph.index[self.layout.entrances[start_node].node]])
        if start_node not in self.graph.index:
            raise ValueError(f"start node {start_node!r} is not in layout {self.layout.id!r}")
        node = self.graph.index[start_node]
        self.table.ensure_source(node)
        return np.array([node])

    def _route(self, planner: RoutePlanner, tour: Tour, groups: Sequence[_Group],
               slot_node: np.ndarray, starts: np.ndarray, ends: np.ndarray,
               not_found: list[NotFoundItem], solver: str, start_node: str | None,
               end_at_checkout: bool, t0: float) -> Route:
        table = planner.table
        order = [int(s) for s in tour.slots]
        group_of_slot = np.repeat(np.arange(len(groups)), [len(g.nodes) for g in groups])
        stop_nodes = [int(slot_node[s]) for s in order]
        start, end = _ends(table, starts, ends, stop_nodes)
        # Merge consecutive groups picked at the same node into one stop.
        merged: list[tuple[int, list[_Group]]] = []
        for slot, node in zip(order, stop_nodes, strict=True):
            group = groups[int(group_of_slot[slot])]
            if merged and merged[-1][0] == node:
                merged[-1][1].append(group)
            else:
                merged.append((node, [group]))
        path = [start]
        stops = []
        for number, (node, members) in enumerate(merged, 1):
            leg = table.path(path[-1], node)
            path.extend(leg[1:])
            stops.append(self._stop(number, node, members, self.graph.path_length(leg)))
        path.extend(table.path(path[-1], end)[1:])
        effective = self.graph.path_length(path, self.table.weights)
        n_items = sum(len(s.items) for s in stops)
        walking = (effective / WALKING_SPEED_M_S + PICK_SECONDS_PER_STOP * len(stops)
                   + PICK_SECONDS_PER_ITEM * n_items)
        entrance = next((e.id for e in self.layout.entrances.values()
                         if self.graph.index[e.node] == start), None)
        checkout = next((c.id for c in self.layout.checkouts.values()
                         if self.graph.index[c.node] == end), None) if end_at_checkout else None
        ids = self.graph.node_ids
        return Route(
            layout_id=self.layout.id, entrance=entrance, start_node=ids[start],
            checkout=checkout, end_node=ids[end], stops=tuple(stops),
            distance_m=round(self.graph.path_length(path), 2),
            walking_time_s=round(walking, 1),
            polyline=tuple((float(self.graph.xy[n, 0]), float(self.graph.xy[n, 1])) for n in path),
            not_found=tuple(not_found), solver=solver, optimal=tour.optimal,
            cost_m=round(tour.cost, 2), planning_ms=round((time.perf_counter() - t0) * 1e3, 2),
        )

    def _stop(self, number: int, node: int, members: list[_Group], leg_m: float) -> RouteStop:
        node_id = self.graph.node_ids[node]
        items = []
        for group in members:
            for item_id, category in group.items:
                shelf = next(s for s in self.layout.shelves_for(category) if s.node == node_id)
                items.append(RouteItem(item_id, category, shelf.id))
        return RouteStop(
            number=number, node=node_id, x=float(self.graph.xy[node, 0]),
            y=float(self.graph.xy[node, 1]), temperature=members[-1].temperature,
            shelves=tuple(dict.fromkeys(i.shelf_id for i in items)), items=tuple(items),
            distance_from_previous_m=round(leg_m, 2),
        )


def _ends(table: DistanceTable, starts: np.ndarray, ends: np.ndarray,
          stop_nodes: list[int]) -> tuple[int, int]:
    """The start and end nodes closest to the first and last stops (or to each other)."""
    if not stop_nodes:
        if not len(ends):
            return int(starts[0]), int(starts[0])
        pairs = [(table.cost(int(e), int(c)), int(e), int(c)) for e in starts for c in ends]
        _, start, end = min(pairs)
        return start, end
    start = min((table.cost(int(e), stop_nodes[0]), int(e)) for e in starts)[1]
    end = (min((table.cost(int(c), stop_nodes[-1]), int(c)) for c in ends)[1] if len(ends)
           else stop_nodes[-1])
    return start, end


@functools.lru_cache(maxsize=16)
def _planner_for(name_or_path: str) -> RoutePlanner:
    return RoutePlanner(load_layout(name_or_path))
