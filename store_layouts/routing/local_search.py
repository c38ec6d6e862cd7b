"""Improvement heuristics on a path with fixed ends: 2-opt, Or-opt, exact windows, kicks.

Everything works on an *extended* symmetric matrix `mx` whose last two indices are the
virtual start S and end T (rows holding the start / end cost vectors), and a `rank` per
index (S = -1, T = +inf-ish) so moves never break the ambient -> chilled -> frozen order:
a 2-opt may only reverse a run of one rank, an Or-opt may only move a one-rank chunk to a
place between a lower-or-equal and a higher-or-equal neighbour. A stop that can be served
from several shelves (slots) may switch slot when it is moved alone, or in place. The whole
neighbourhood is evaluated at once with numpy and the best improving move is applied.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass

import numpy as np

from store_layouts.routing.chain import FixedOrder
from store_layouts.routing.held_karp import HeldKarp

# Smaller improvements than this (metres) are rounding noise, not progress.
EPS = 1e-7
# Or-opt moves chunks of up to SHORT_CHUNK stops first (the classic Or-opt); only when
# nothing short improves does it try chunks up to MAX_CHUNK (whole aisles or blocks of a
# route), which find much better tours in aisle layouts but cost ~3x more to evaluate.
SHORT_CHUNK = 3
MAX_CHUNK = 16
# Kicks perturb same-rank runs of at least this many stops (a double bridge cuts a run
# into four pieces).
MIN_BRIDGE_RUN = 4
START_RANK, END_RANK = -1, 1_000_000
# Sliding windows advance by this fraction of their width: overlapping, so a stop can move
# across a window edge, but not by half (measured: as good, a third fewer Held-Karp runs).
WINDOW_STEP = 0.75
# A tour this short is re-solved as one window (Held-Karp on 10 stops: ~1-2 ms).
WHOLE_WINDOW = 10


def extend(dist: np.ndarray, start: np.ndarray, end: np.ndarray,
           rank: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The (K+2)x(K+2) matrix with S = K and T = K + 1, and the rank of every index."""
    k = len(dist)
    mx = np.zeros((k + 2, k + 2))
    mx[:k, :k] = dist
    mx[k, :k] = mx[:k, k] = start
    mx[k + 1, :k] = mx[:k, k + 1] = end
    return mx, np.concatenate([rank, [START_RANK, END_RANK]]).astype(np.int64)


def tour_cost(mx: np.ndarray, tour: np.ndarray) -> float:
    return float(mx[tour[:-1], tour[1:]].sum())


@dataclass(frozen=True)
class Alternatives:
    """For every index of `mx`, the slots of the same group (padded by repeating itself)."""

    table: np.ndarray  # (K+2, width)
    options: tuple[np.ndarray, ...]  # per index, the slots of its group (itself if alone)

    @classmethod
    def build(cls, size: int, members: list[np.ndarray]) -> Alternatives:
        width = max((len(m) for m in members), default=1)
        table = np.repeat(np.arange(size)[:, None], width, axis=1)
        options = [np.array([i]) for i in range(size)]
        for m in members:
            if len(m) > 1:
                table[m, :len(m)] = m
                table[m, len(m):] = m[0]
                for i in m:
                    options[i] = np.asarray(m)
        return cls(table, tuple(options))

    def best_slots(self, mx: np.ndarray, tour: np.ndarray) -> np.ndarray:
        """The tour with every stop's slot re-picked optimally for its order (layered DP)."""
        if self.trivial:
            return tour
        layers = [np.array([tour[0]]), *(self.options[x] for x in tour[1:-1]),
                  np.array([tour[-1]])]
        plan = FixedOrder(mx, layers, np.zeros(len(mx)))
        return np.array(plan.path_from(int(tour[-1]))[::-1], dtype=tour.dtype)

    @property
    def trivial(self) -> bool:
        return self.table.shape[1] == 1


@functools.lru_cache(maxsize=256)
def _neighbourhood(n: int, shortest: int, longest: int) -> _Neighbourhood:
    return _Neighbourhood(n, shortest, longest)


class _Neighbourhood:
    """Index arrays that depend only on the tour length (cached; treat as read-only)."""

    def __init__(self, n: int, shortest: int, longest: int) -> None:
        self.upper = np.triu(np.ones((n + 1, n + 1), dtype=bool), k=2)
        self.pos = np.arange(n + 1)
        starts, lengths = [], []
        for length in range(shortest, min(longest, n - 1) + 1):
            i = np.arange(1, n - length + 2)
            starts.append(i)
            lengths.append(np.full(len(i), length))
        self.i = np.concatenate(starts) if starts else np.zeros(0, np.int64)
        self.length = np.concatenate(lengths) if lengths else np.zeros(0, np.int64)
        self.last = self.i + self.length - 1
        self.single = self.length == 1
        self.apart = ((self.pos[None, :] <= self.i[:, None] - 2)
                      | (self.pos[None, :] >= self.i[:, None] + self.length[:, None]))


def local_search(mx: np.ndarray, tour: np.ndarray, rank: np.ndarray,
                 alts: Alternatives | None = None) -> np.ndarray:
    """Best-improvement 2-opt + Or-opt (+ slot switches) until no move improves;
    tour[0] and tour[-1] stay put."""
    t = tour.copy()
    n = len(t) - 2
    if n < 1:
        return t
    short = _neighbourhood(n, 1, SHORT_CHUNK)
    long = _neighbourhood(n, SHORT_CHUNK + 1, MAX_CHUNK)
    while True:
        move = _best_move(mx, t, rank, short, alts, core=True)
        if move is None and len(long.i):
            move = _best_move(mx, t, rank, long, alts, core=False)
        if move is None:
            return t
        t = _apply(t, move)


def _best_move(mx: np.ndarray, t: np.ndarray, rank: np.ndarray, hood: _Neighbourhood,
               alts: Alternatives | None, core: bool) -> tuple | None:
    """The best improving move: Or-opt over `hood`'s chunks, plus (if `core`) 2-opt,
    boundary double reversals and slot switches."""
    a, b = t[:-1], t[1:]
    w = mx[a, b]
    ra, rb = rank[a], rank[b]
    best, move = -EPS, None
    # 2-opt: remove edges p and q (q >= p + 2), reverse t[p+1 .. q].
    if core and len(t) > 3:
        delta = mx[a[:, None], a] + mx[b[:, None], b] - w[:, None] - w[None, :]
        delta[~(hood.upper & (rb[:, None] == ra[None, :]))] = np.inf
        p, q = divmod(int(delta.argmin()), delta.shape[1])
        if delta[p, q] < best:
            best, move = float(delta[p, q]), ("2opt", int(p), int(q))
    # Across a rank boundary B (t[B] and t[B+1] differ in rank): reverse t[p+1 .. B] and
    # t[B+1 .. q] together. Turning both sides of a hand-over around is often the only
    # way to improve it, and neither single reversal may help.
    for bnd in np.flatnonzero(ra[1:-1] != rb[1:-1]) + 1 if core else ():
        ps = np.flatnonzero(rank[t[1:bnd + 1]] == rank[t[bnd]])  # p + 1 in the left run
        qs = np.flatnonzero(rank[t[bnd + 1:-1]] == rank[t[bnd + 1]]) + bnd + 1
        if not len(ps) or not len(qs):
            continue
        delta = (mx[t[ps], t[bnd]][:, None] + mx[t[ps + 1][:, None], t[qs][None, :]]
                 + mx[t[bnd + 1], t[qs + 1]][None, :] - w[ps][:, None] - w[bnd] - w[qs][None, :])
        pi, qi = divmod(int(delta.argmin()), delta.shape[1])
        if delta[pi, qi] < best:
            best, move = float(delta[pi, qi]), ("boundary", int(ps[pi]), int(bnd), int(qs[qi]))
    # Or-opt: move chunk t[i .. i+L-1] between t[p] and t[p+1], maybe reversed; a single
    # stop may change slot while moving.
    if len(hood.i):
        first, last = t[hood.i], t[hood.last]
        prev, nxt = t[hood.i - 1], t[hood.last + 1]
        removal = mx[prev, first] + mx[last, nxt] - mx[prev, nxt]
        ins_f = mx[a[None, :], first[:, None]] + mx[last[:, None], b[None, :]]
        ins_r = mx[a[None, :], last[:, None]] + mx[first[:, None], b[None, :]]
        rev = ins_r < ins_f
        ins = np.where(rev, ins_r, ins_f)
        slot = None
        if alts is not None and not alts.trivial:
            slot = first[:, None].repeat(len(a), axis=1)
            options = alts.table[first[hood.single]]  # (singles, width)
            cost = mx[a[None, None, :], options[:, :, None]] + mx[options[:, :, None],
                                                                   b[None, None, :]]
            pick = cost.argmin(axis=1)
            ins[hood.single] = cost.min(axis=1)
            slot[hood.single] = options[np.arange(len(options))[:, None], pick]
        gain = ins - w[None, :] - removal[:, None]
        r = rank[first][:, None]
        ok = hood.apart & (ra[None, :] <= r) & (r <= rb[None, :])
        ok &= (rank[first] == rank[last])[:, None]
        gain[~ok] = np.inf
        ci, cp = divmod(int(gain.argmin()), gain.shape[1])
        if gain[ci, cp] < best:
            best = float(gain[ci, cp])
            new_slot = int(first[ci] if slot is None else slot[ci, cp])
            move = ("or", int(hood.i[ci]), int(cp), bool(rev[ci, cp]), int(hood.length[ci]),
                    new_slot)
    # Slot switch in place.
    if core and alts is not None and not alts.trivial:
        prev, cur, nxt = t[:-2], t[1:-1], t[2:]
        options = alts.table[cur]
        cost = mx[prev[:, None], options] + mx[options, nxt[:, None]]
        pick = cost.argmin(axis=1)
        delta = cost[np.arange(len(cur)), pick] - mx[prev, cur] - mx[cur, nxt]
        j = int(delta.argmin())
        if delta[j] < best:
            move = ("slot", j + 1, int(options[j, pick[j]]))
    return move


def _apply(t: np.ndarray, move: tuple) -> np.ndarray:
    t = t.copy()
    if move[0] == "2opt":
        _, p, q = move
        t[p + 1:q + 1] = t[p + 1:q + 1][::-1]
        return t
    if move[0] == "boundary":
        _, p, bnd, q = move
        t[p + 1:bnd + 1] = t[p + 1:bnd + 1][::-1]
        t[bnd + 1:q + 1] = t[bnd + 1:q + 1][::-1]
        return t
    if move[0] == "slot":
        t[move[1]] = move[2]
        return t
    _, i, p, rev, length, slot = move
    chunk = t[i:i + length][::-1] if rev else t[i:i + length]
    if length == 1:
        chunk = np.array([slot], dtype=t.dtype)
    if p < i:
        return np.concatenate([t[:p + 1], chunk, t[p + 1:i], t[i + length:]])
    return np.concatenate([t[:i], t[i + length:p + 1], chunk, t[p + 1:]])


def descend(mx: np.ndarray, tour: np.ndarray, rank: np.ndarray, alts: Alternatives,
            window: int = 0, reference: np.ndarray | None = None,
            deadline: float = np.inf) -> np.ndarray:
    """Local search, then (if `window`) exact window sweeps + local search until neither
    improves. Given a `reference` tour already swept, only windows where the tour now
    differs from it are re-solved at first. After `deadline`, sweeps stop early (the
    first one still covers the whole tour without a reference)."""
    t = local_search(mx, tour, rank, alts)
    if window < 3:
        return t
    cost = tour_cost(mx, t)
    dirty = np.ones(len(t), dtype=bool) if reference is None else t != reference
    sweep_deadline = np.inf if reference is None else deadline
    while True:
        swept = window_sweep(mx, t, rank, alts, window, dirty, sweep_deadline)
        sweep_deadline = deadline
        swept_cost = tour_cost(mx, swept)
        if swept_cost >= cost - EPS or time.perf_counter() > deadline:
            return t if swept_cost >= cost - EPS else local_search(mx, swept, rank, alts)
        t = local_search(mx, swept, rank, alts)
        cost = tour_cost(mx, t)
        # Only windows around positions that changed since the last sweep can improve.
        dirty = t != swept


def iterated_local_search(mx: np.ndarray, tour: np.ndarray, rank: np.ndarray,
                          rng: np.random.Generator, kicks: int, deadline: float = np.inf,
                          alts: Alternatives | None = None, window: int = 0,
                          descended: bool = False) -> np.ndarray:
    """`descend` (unless `descended` says the tour already is a local optimum), then
    `kicks` rounds of perturbation + `descend`, keeping the best tour. Stops early at
    `deadline` (time.perf_counter())."""
    if alts is None:
        alts = Alternatives.build(len(mx), [])
    best = tour if descended else descend(mx, tour, rank, alts, window)
    best_cost = tour_cost(mx, best)
    runs = _runs(best, rank)
    if not runs:
        return best
    for kick in range(kicks):
        if time.perf_counter() > deadline:
            break
        if kick % 2 and not alts.trivial:
            # Every other kick turns part of a run round and re-picks all shelves: going
            # through an area the other way often wants other shelves for several stops.
            start = alts.best_slots(mx, _reverse(best, runs, rng))
        else:
            start = _double_bridge(best, runs, rng)
        cand = descend(mx, start, rank, alts, window, best, deadline)
        cost = tour_cost(mx, cand)
        if cost < best_cost - EPS:
            best, best_cost = cand, cost
    return best


def _runs(t: np.ndarray, rank: np.ndarray) -> list[tuple[int, int]]:
    """[lo, hi) position ranges of same-rank runs long enough to kick."""
    ranks = rank[t]
    runs, lo = [], 1
    for pos in range(2, len(t)):
        if ranks[pos] != ranks[lo]:
            if pos - lo >= MIN_BRIDGE_RUN:
                runs.append((lo, pos))
            lo = pos
    return runs


def _reverse(t: np.ndarray, runs: list[tuple[int, int]], rng: np.random.Generator) -> np.ndarray:
    """Reverse a random stretch (at least 3 stops) of a same-rank run."""
    lo, hi = runs[int(rng.integers(len(runs)))]
    x = int(rng.integers(lo, hi - 2))
    y = int(rng.integers(x + 3, hi + 1))
    t = t.copy()
    t[x:y] = t[x:y][::-1]
    return t


def _double_bridge(t: np.ndarray, runs: list[tuple[int, int]],
                   rng: np.random.Generator) -> np.ndarray:
    """Cut a same-rank run A|B|C|D into A C B D: a move 2-opt and Or-opt cannot undo."""
    weights = np.array([hi - lo for lo, hi in runs], dtype=float)
    lo, hi = runs[int(rng.choice(len(runs), p=weights / weights.sum()))]
    x, y, z = np.sort(rng.choice(np.arange(lo + 1, hi), size=3, replace=False))
    return np.concatenate([t[:x], t[y:z], t[x:y], t[z:]])


def window_sweep(mx: np.ndarray, tour: np.ndarray, rank: np.ndarray, alts: Alternatives,
                 width: int = 8, dirty: np.ndarray | None = None,
                 deadline: float = np.inf) -> np.ndarray:
    """Re-solve windows of `width` consecutive stops exactly (Held-Karp with the rank order,
    slot choice included) between their fixed neighbours; windows overlap. With `dirty` (a
    flag per position), windows with no dirty position or neighbour are skipped. No new
    window starts after `deadline`."""
    t = tour.copy()
    n = len(t) - 2
    if n <= WHOLE_WINDOW:
        width = n
    lo = 1
    while lo <= n - 1 and time.perf_counter() <= deadline:
        hi = min(lo + width, n + 1)
        if hi - lo >= 3 and (dirty is None or dirty[lo - 1:hi + 1].any()):
            options = [alts.options[x] for x in t[lo:hi]]
            slots = np.concatenate(options)
            local = np.repeat(np.arange(len(options)), [len(o) for o in options])
            hk = HeldKarp(mx[slots[:, None], slots], local, mx[t[lo - 1], slots],
                          rank[t[lo:hi]])
            total = hk.final + mx[slots, t[hi]]
            c = int(total.argmin())
            current = float(mx[t[lo - 1:hi], t[lo:hi + 1]].sum())
            if total[c] < current - EPS:
                t[lo:hi] = slots[hk.path_from(c)[::-1]]
        if hi > n:
            break
        lo += max(1, int(width * WINDOW_STEP))
    return t
