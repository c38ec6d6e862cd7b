"""The route solvers, by name. Each takes a `TourProblem` and returns a `Tour`.

- ``exact``: Held-Karp on every temperature segment, chained exactly. Refuses segments
  whose DP would be too big (`TooLargeForExact`).
- ``local_search``: the whole tour improved as one: cheapest insertion, then the
  precedence-respecting local search of `local_search.py` (2-opt, Or-opt, hand-over double
  reversals, shelf switches, exact sliding windows -- the whole tour when it has at most
  10 stops), a mirror-image second start, kicks until the time budget, and a final exact
  re-pick of shelves for the order. The baseline.
- ``auto`` (the default): Held-Karp on every temperature segment small enough; the same
  local search only inside the large ones (consecutive large segments as one block), each
  optimised with the exact cost of reaching it and of finishing the tour after it, and
  started twice when the store has several entrances (once from the other entrance);
  then everything is re-chained exactly. Exact whenever all segments are small.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable

import numpy as np

from store_layouts.routing import held_karp
from store_layouts.routing.chain import (
    FixedOrder,
    Segment,
    assemble,
    entry_costs,
    exit_costs,
    make_segments,
    merge,
)
from store_layouts.routing.local_search import (
    EPS,
    Alternatives,
    descend,
    extend,
    iterated_local_search,
    local_search,
    tour_cost,
)
from store_layouts.routing.problem import Tour, TourProblem

logger = logging.getLogger(__name__)

# Held-Karp on a segment costs ~2^groups x slots^2 element operations. Online (auto) we
# go exact up to 12 groups on 13 candidate slots: 2-4 ms in numpy, which pays for itself
# (measured: the chilled part of a 60-item supermarket list usually fits, and solving it
# exactly both improves tours and leaves less for local search). 14 groups would take
# 10-20 ms, most of the budget.
AUTO_EXACT_WORK = held_karp.work(12, 13)
# The exact solver, used for tests and benchmark references, accepts up to 2^18 x 20^2
# (~100M elements, seconds and ~60 MB): beyond that, use a heuristic reference.
EXACT_MAX_WORK = held_karp.work(18, 20)
# At most this many double-bridge kicks per stop being improved; in practice the time
# budget below ends the kicking first on long lists.
KICKS_PER_STOP = 1.5
# Stops per exactly re-solved window in the local search (see local_search.window_sweep):
# Held-Karp on 8 stops is well under a millisecond and catches reorderings 2-opt and
# Or-opt miss, especially with several candidate shelves per stop.
WINDOW = 8
# The mirror-image start (see _descend) gets the costly window sweeps only if plain local
# search brings it within this fraction of the tour it competes with.
MIRROR_SLACK = 0.03
# Time after which no new kick begins (those under way finish): keeps the p99 planning
# time of 60-item lists under 30 ms on a busy two-core box.
DEFAULT_TIME_BUDGET_S = 0.012
# A second start (several entrances) may run until this multiple of the budget if it is
# expected to finish by then; kicks never run past the budget itself. On an idle box both
# starts fit easily; on a busy one the second is dropped before the plan gets slow.
SECOND_START_STRETCH = 1.5


class TooLargeForExact(ValueError):
    """A segment is too big for Held-Karp within the configured work limit."""


def solve_exact(problem: TourProblem, *, rng: np.random.Generator | None = None,
                time_budget_s: float = 0.0, max_work: int = EXACT_MAX_WORK) -> Tour:
    segs = make_segments(problem)
    for seg in segs:
        size = held_karp.work(len(seg.groups), len(seg.slots))
        if size > max_work:
            raise TooLargeForExact(f"segment of {len(seg.groups)} stops / {len(seg.slots)} "
                                   f"shelves needs {size:.2g} DP steps (limit {max_work:.2g})")
    slots, cost = assemble(problem, segs) if segs else ([], problem.cost([]))
    return Tour(tuple(slots), cost, optimal=True)


def solve_local_search(problem: TourProblem, *, rng: np.random.Generator,
                       time_budget_s: float = DEFAULT_TIME_BUDGET_S) -> Tour:
    deadline = time.perf_counter() + time_budget_s
    rank = problem.group_rank[problem.slot_group]
    mx, xrank = extend(problem.dist, problem.start, problem.end, rank)
    members = [np.asarray(s) for s in problem.group_slots]
    alts = Alternatives.build(len(mx), members)
    tour = _descend(mx, _insertion(mx, xrank, members), xrank, alts,
                    time.perf_counter() + time_budget_s * SECOND_START_STRETCH)
    kicks = int(KICKS_PER_STOP * problem.n_groups)
    tour = _finish(mx, tour, xrank, alts, rng, kicks, deadline)
    slots = tuple(int(x) for x in tour[1:-1])
    return Tour(slots, problem.cost(slots), optimal=False)


def solve_auto(problem: TourProblem, *, rng: np.random.Generator,
               time_budget_s: float = DEFAULT_TIME_BUDGET_S) -> Tour:
    deadline = time.perf_counter() + time_budget_s
    segs = make_segments(problem)
    big = [held_karp.work(len(seg.groups), len(seg.slots)) > AUTO_EXACT_WORK for seg in segs]
    if not any(big):
        return solve_exact(problem, max_work=AUTO_EXACT_WORK)
    # Consecutive large segments are improved together, so the local search also moves the
    # hand-over point between them; small segments stay exact around them.
    blocks: list[Segment] = []
    heuristic: list[int] = []
    for is_big, run in itertools.groupby(zip(big, segs, strict=True), key=lambda x: x[0]):
        members = [seg for _, seg in run]
        if is_big:
            heuristic.append(len(blocks))
            blocks.append(merge(members))
        else:
            blocks.extend(members)
    # Start orders come from one insertion tour of everything: a better start than
    # inserting into each block alone, and every block then has the order the others'
    # boundary costs need.
    _initial_orders(problem, blocks, heuristic)
    total = sum(len(blocks[b].groups) for b in heuristic)
    for b in heuristic:
        share = time_budget_s * len(blocks[b].groups) / total
        now = time.perf_counter()
        _optimise_segment(problem, blocks, b, rng, min(deadline, now + share),
                          now + share * SECOND_START_STRETCH)
    slots, cost = assemble(problem, blocks)
    return Tour(tuple(slots), cost, optimal=False)


SOLVERS: dict[str, Callable[..., Tour]] = {
    "auto": solve_auto,
    "exact": solve_exact,
    "local_search": solve_local_search,
}


# --- pieces ----------------------------------------------------------------------------------

def _initial_orders(problem: TourProblem, segs: list[Segment], big: list[int]) -> None:
    """Orders for the large segments from one cheapest-insertion tour of everything."""
    rank = problem.group_rank[problem.slot_group]
    mx, xrank = extend(problem.dist, problem.start, problem.end, rank)
    tour = _insertion(mx, xrank, [np.asarray(s) for s in problem.group_slots])
    visit = [int(problem.slot_group[x]) for x in tour[1:-1]]
    for s in big:
        local = {int(g): i for i, g in enumerate(segs[s].groups)}
        segs[s].order = [local[g] for g in visit if g in local]


def _optimise_segment(problem: TourProblem, segs: list[Segment], s: int,
                      rng: np.random.Generator, deadline: float,
                      start_deadline: float) -> None:
    """Improve one segment's order given exact costs to reach it and to finish after it:
    descend from two starts, then kick the better tour until the deadline."""
    seg = segs[s]
    entry, leave = entry_costs(problem, segs, s), exit_costs(problem, segs, s)
    rank = problem.group_rank[seg.groups[seg.local_group]]
    mx, xrank = extend(seg.dist(problem), entry, leave, rank)
    members = [seg.local_slots(g) for g in range(len(seg.groups))]
    alts = Alternatives.build(len(mx), members)
    # With several entrances, a second start from the entrance the first tour did not use
    # tries the other direction through the store. It runs only if it should finish by
    # `start_deadline` (it takes about as long as the first): on a busy machine plans get
    # a little worse rather than slower. With one entrance, the first start's mirror image
    # plays that part (see _descend).
    if seg.order is None:
        best = _descend(mx, _insertion(mx, xrank, members), xrank, alts, start_deadline)
    elif s == 0 and problem.start_options is not None:
        began = time.perf_counter()
        best = descend(mx, _choose_slots(mx, [members[g] for g in seg.order]), xrank, alts,
                       WINDOW, deadline=start_deadline)
        if 2 * time.perf_counter() - began < start_deadline:
            start = _second_start(problem, seg, mx, xrank, members, best)
            other = descend(mx, start, xrank, alts, WINDOW, deadline=start_deadline)
            if tour_cost(mx, other) < tour_cost(mx, best) - EPS:
                best = other
    else:
        best = _descend(mx, _choose_slots(mx, [members[g] for g in seg.order]), xrank, alts,
                        start_deadline)
    kicks = int(KICKS_PER_STOP * len(seg.groups))
    best = _finish(mx, best, xrank, alts, rng, kicks, deadline)
    seg.order = [int(seg.local_group[x]) for x in best[1:-1]]


def _second_start(problem: TourProblem, seg: Segment, mx: np.ndarray, xrank: np.ndarray,
                  members: list[np.ndarray], first: np.ndarray) -> np.ndarray:
    """Cheapest insertion into the first segment from the entrance(s) the first tour did
    not use: beginning at the other side of a big store is the alternative local search
    cannot reach by small steps."""
    assert problem.start_options is not None
    options = problem.start_options[:, seg.slots]
    used = int(options[:, first[1]].argmin())
    others = np.delete(options, used, axis=0)
    alt = mx.copy()
    k = len(seg.slots)
    alt[k, :k] = alt[:k, k] = others.min(axis=0)
    return _insertion(alt, xrank, members)


def _descend(mx: np.ndarray, tour: np.ndarray, xrank: np.ndarray, alts: Alternatives,
             deadline: float) -> np.ndarray:
    """Descend from the tour and (with several shelves per stop) from its mirror image."""
    best = descend(mx, tour, xrank, alts, WINDOW, deadline=deadline)
    if not alts.trivial:
        # Walking a run the other way round can want other shelves for many stops at once,
        # which no single move finds: the mirrored order with re-picked shelves is a second
        # start. Only a mirror that beats the tour after plain local search gets the
        # (costlier) window sweeps.
        mirrored = local_search(mx, alts.best_slots(mx, _mirror(best, xrank)), xrank, alts)
        if tour_cost(mx, mirrored) < tour_cost(mx, best) * (1 + MIRROR_SLACK):
            mirrored = descend(mx, mirrored, xrank, alts, WINDOW, deadline=deadline)
            if tour_cost(mx, mirrored) < tour_cost(mx, best) - EPS:
                best = mirrored
    return best


def _finish(mx: np.ndarray, tour: np.ndarray, xrank: np.ndarray, alts: Alternatives,
            rng: np.random.Generator, kicks: int, deadline: float) -> np.ndarray:
    """Kick a descended tour until the deadline, then re-pick every stop's best slot."""
    best = iterated_local_search(mx, tour, xrank, rng, kicks, deadline, alts, WINDOW,
                                 descended=True)
    chosen = alts.best_slots(mx, best)
    return chosen if tour_cost(mx, chosen) < tour_cost(mx, best) - EPS else best


def _mirror(tour: np.ndarray, xrank: np.ndarray) -> np.ndarray:
    """The tour with every same-rank run of inner stops reversed (ranks stay in order)."""
    inner = tour[1:-1]
    cuts = np.flatnonzero(np.diff(xrank[inner])) + 1
    runs = [run[::-1] for run in np.split(inner, cuts)] if len(inner) else []
    return np.concatenate([tour[:1], *runs, tour[-1:]])


def _choose_slots(mx: np.ndarray, layers: list[np.ndarray]) -> np.ndarray:
    """For a fixed group order, the best slot of each group (S and T are the last indices)."""
    s, t = len(mx) - 2, len(mx) - 1
    plan = FixedOrder(mx, [np.array([s]), *layers, np.array([t])], np.zeros(len(mx)))
    return np.array(plan.path_from(t)[::-1], dtype=np.int64)


def _insertion(mx: np.ndarray, xrank: np.ndarray, members: list[np.ndarray]) -> np.ndarray:
    """Cheapest insertion, farthest groups first, respecting ranks."""
    s, t = len(mx) - 2, len(mx) - 1
    far = [float((mx[s, m] + mx[m, t]).min()) for m in members]
    tour = np.array([s, t], dtype=np.int64)
    for g in np.argsort(far)[::-1]:
        cands = members[int(g)]
        a, b = tour[:-1], tour[1:]
        cost = mx[a[None, :], cands[:, None]] + mx[cands[:, None], b[None, :]] - mx[a, b][None, :]
        r = xrank[cands[0]]
        cost[:, ~((xrank[a] <= r) & (r <= xrank[b]))] = np.inf
        ci, p = np.unravel_index(int(cost.argmin()), cost.shape)
        tour = np.insert(tour, p + 1, cands[ci])
    return tour
