"""The numeric routing problem the solvers work on, independent of any layout.

Requested categories become *groups* (one future stop each); a group can be served from any
of its *slots* (a slot is one candidate pick node for one group, so a category stocked on
two shelves gives its group two slots). A tour picks one slot per group and orders the
groups so that temperature ranks never decrease (ambient, then chilled, then frozen),
starting from a start point and ending at an end point.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class TourProblem:
    dist: np.ndarray  # (K, K) symmetric walking cost between slots
    start: np.ndarray  # (K,) cost from the start point to each slot
    end: np.ndarray  # (K,) cost from each slot to the end point
    slot_group: np.ndarray  # (K,) group of each slot
    group_rank: np.ndarray  # (G,) temperature rank of each group
    group_slots: tuple[np.ndarray, ...]  # (G,) slots of each group
    # (E, K) cost from each of several possible start points (entrances); `start` is their
    # minimum. Heuristics use it to try tours that begin at each entrance.
    start_options: np.ndarray | None = None

    @property
    def n_groups(self) -> int:
        return len(self.group_slots)

    def segments(self) -> list[np.ndarray]:
        """Group ids of each temperature rank present, in visiting order."""
        ranks = sorted(set(self.group_rank.tolist()))
        return [np.flatnonzero(self.group_rank == r) for r in ranks]

    def cost(self, slots: Sequence[int]) -> float:
        if not len(slots):
            return 0.0
        s = np.asarray(slots, dtype=np.int64)
        return float(self.start[s[0]] + self.dist[s[:-1], s[1:]].sum() + self.end[s[-1]])

    def is_feasible(self, slots: Sequence[int]) -> bool:
        """One slot per group, every group once, ranks non-decreasing."""
        groups = [int(self.slot_group[s]) for s in slots]
        ranks = [int(self.group_rank[g]) for g in groups]
        return sorted(groups) == list(range(self.n_groups)) and ranks == sorted(ranks)


@dataclass(frozen=True)
class Tour:
    slots: tuple[int, ...]  # one slot per group, in visiting order
    cost: float
    optimal: bool  # proven optimal (exact solver on every segment)
