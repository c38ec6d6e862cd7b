"""Chaining temperature segments: exact where the order inside a segment is free.

Because ranks never decrease, a tour is ambient part + chilled part + frozen part. Each
segment maps "cost vector at its entry slots" to "cost vector at its exit slots", either
exactly (Held-Karp over every order) or for a fixed group order (a layered shortest path
that still picks the best slot per group). Chaining the maps from the end back to the
start gives the best tour for the given fixed orders -- and the optimum if none is fixed.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np

from store_layouts.routing.held_karp import HeldKarp
from store_layouts.routing.problem import TourProblem

INF = np.inf


@dataclass
class Segment:
    groups: np.ndarray  # global group ids in this temperature segment
    slots: np.ndarray  # global slot ids of those groups
    local_group: np.ndarray  # (len(slots),) index into `groups` of each slot
    order: list[int] | None = None  # fixed visiting order (local group ids); None = exact
    _dist: np.ndarray | None = field(default=None, repr=False)
    # Held-Karp results by `init` vector: exit costs and the final assembly ask for the same
    # DP (distances are symmetric, so direction does not matter for Held-Karp).
    _exact: dict[bytes, HeldKarp] = field(default_factory=dict, repr=False)

    def dist(self, problem: TourProblem) -> np.ndarray:
        if self._dist is None:
            self._dist = problem.dist[np.ix_(self.slots, self.slots)]
        return self._dist

    def local_slots(self, local_group: int) -> np.ndarray:
        return np.flatnonzero(self.local_group == local_group)


def merge(segments: list[Segment]) -> Segment:
    """One segment made of consecutive ones (for solving them jointly by local search)."""
    groups = np.concatenate([s.groups for s in segments])
    offsets = np.cumsum([0] + [len(s.groups) for s in segments[:-1]])
    local = np.concatenate([s.local_group + off for s, off in zip(segments, offsets,
                                                                     strict=True)])
    return Segment(groups, np.concatenate([s.slots for s in segments]), local)


def make_segments(problem: TourProblem) -> list[Segment]:
    segments = []
    for groups in problem.segments():
        slots = np.concatenate([problem.group_slots[g] for g in groups])
        local = np.concatenate([np.full(len(problem.group_slots[g]), i)
                                for i, g in enumerate(groups)])
        segments.append(Segment(groups, slots, local))
    return segments


class FixedOrder:
    """Layered DP along a fixed order; same interface as `HeldKarp` (final, path_from)."""

    def __init__(self, dist: np.ndarray, layers: list[np.ndarray], init: np.ndarray) -> None:
        # layers[0] is the end where `init` is paid, layers[-1] the end `final` is about.
        k = len(dist)
        val = init[layers[0]]
        self._pointers: list[np.ndarray] = []
        for prev, cur in itertools.pairwise(layers):
            cand = val[:, None] + dist[prev[:, None], cur]
            self._pointers.append(prev[cand.argmin(axis=0)])
            val = cand.min(axis=0)
        self.final = np.full(k, INF)
        self.final[layers[-1]] = val
        self._layers = layers

    def path_from(self, slot: int) -> list[int]:
        seq = [slot]
        for layer, pointers in zip(self._layers[:0:-1], self._pointers[::-1], strict=True):
            seq.append(int(pointers[int(np.flatnonzero(layer == seq[-1])[0])]))
        return seq


def transform(problem: TourProblem, seg: Segment, init: np.ndarray,
              forward: bool) -> HeldKarp | FixedOrder:
    """Forward: init = cost to enter at each slot, final = cost having ended at each slot.
    Backward: init = cost to leave from each slot, final = cost having started at each slot.
    (Distances are symmetric, so Held-Karp is the same computation both ways.)"""
    if seg.order is None:
        key = init.tobytes()
        if key not in seg._exact:
            seg._exact[key] = HeldKarp(seg.dist(problem), seg.local_group, init)
        return seg._exact[key]
    layers = [seg.local_slots(g) for g in seg.order]
    return FixedOrder(seg.dist(problem), layers if forward else layers[::-1], init)


def entry_costs(problem: TourProblem, segs: list[Segment], s: int) -> np.ndarray:
    """Best cost from the start to entering segment s at each of its slots."""
    vec = problem.start
    for seg in segs[:s]:
        last = transform(problem, seg, vec[seg.slots], forward=True).final
        vec = (last[:, None] + problem.dist[seg.slots, :]).min(axis=0)
    return vec[segs[s].slots]


def exit_costs(problem: TourProblem, segs: list[Segment], s: int) -> np.ndarray:
    """Best cost from leaving segment s at each of its slots to the end."""
    vec = problem.end
    for seg in segs[:s:-1]:
        first = transform(problem, seg, vec[seg.slots], forward=False).final
        vec = (problem.dist[:, seg.slots] + first[None, :]).min(axis=1)
    return vec[segs[s].slots]


def assemble(problem: TourProblem, segs: list[Segment]) -> tuple[list[int], float]:
    """The best tour given the segments' fixed orders (exact where no order is fixed)."""
    vec = problem.end
    plans: list[HeldKarp | FixedOrder] = []
    choice: list[np.ndarray] = []  # per segment: best local entry slot after each global slot
    for seg in segs[::-1]:
        plan = transform(problem, seg, vec[seg.slots], forward=False)
        via = problem.dist[:, seg.slots] + plan.final[None, :]
        plans.append(plan)
        choice.append(via.argmin(axis=1))
        vec = via.min(axis=1)
    plans.reverse()
    choice.reverse()
    first = segs[0]
    total = problem.start[first.slots] + plans[0].final
    entry = int(total.argmin())
    cost = float(total[entry])
    tour: list[int] = []
    for t, seg in enumerate(segs):
        tour.extend(int(seg.slots[c]) for c in plans[t].path_from(entry))
        if t + 1 < len(segs):
            entry = int(choice[t + 1][tour[-1]])
    return tour, cost
