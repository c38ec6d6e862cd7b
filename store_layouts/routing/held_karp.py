"""Held-Karp dynamic programming over one temperature segment, with candidate slots.

dp[mask, c] = cheapest cost of a path that visits exactly the groups in `mask` (one slot
each) and ends at slot c, plus `init` at the path's other end. The distance matrix is
symmetric, so the same DP read backwards gives "start at c, visit all, then pay `init`".
Masks are processed by population count, vectorised over all masks of one size.
"""

from __future__ import annotations

import functools

import numpy as np

# Elements per vectorised step (masks x slots x slots); bounds the working memory to
# ~ 30 MB of float64 whatever the segment size.
CHUNK_ELEMENTS = 4_000_000
INF = np.inf


def work(n_groups: int, n_slots: int) -> int:
    """The DP's size, used to decide whether exact solving is cheap enough."""
    return (1 << n_groups) * n_slots * n_slots


@functools.lru_cache(maxsize=32)
def _masks_by_size(m: int) -> tuple[np.ndarray, ...]:
    masks = np.arange(1 << m, dtype=np.int64)
    sizes = np.zeros_like(masks)
    for bit in range(m):
        sizes += (masks >> bit) & 1
    return tuple(masks[sizes == k] for k in range(m + 1))


class HeldKarp:
    """Exact path DP for `m` groups over `k` slots (slot_group values in 0..m-1).

    With `group_rank`, paths visit groups in non-decreasing rank (read from the `init`
    end): a slot may only be added once every lower-rank group is in and no higher one."""

    def __init__(self, dist: np.ndarray, slot_group: np.ndarray, init: np.ndarray,
                 group_rank: np.ndarray | None = None) -> None:
        k = len(slot_group)
        m = int(slot_group.max()) + 1 if k else 0
        self.m, self.k = m, k
        self.gbit = (np.int64(1) << slot_group.astype(np.int64))
        dp = np.full((1 << m, k), INF)
        parent = np.full((1 << m, k), -1, dtype=np.int32)
        lower = higher = None
        if group_rank is not None and len(set(group_rank.tolist())) > 1:
            bits = np.int64(1) << np.arange(m, dtype=np.int64)
            rank = group_rank[slot_group]
            lower = np.array([bits[group_rank < r].sum() for r in rank], dtype=np.int64)
            higher = np.array([bits[group_rank > r].sum() for r in rank], dtype=np.int64)
        start = init if lower is None else np.where(lower == 0, init, INF)
        dp[self.gbit, np.arange(k)] = start
        dist_t = np.ascontiguousarray(dist.T)
        step = max(1, CHUNK_ELEMENTS // max(1, k * k))
        for masks in _masks_by_size(m)[2:]:
            for lo in range(0, len(masks), step):
                chunk = masks[lo:lo + step]
                has = (chunk[:, None] & self.gbit[None, :]) != 0
                prev = chunk[:, None] ^ self.gbit[None, :]
                if lower is not None and higher is not None:
                    has &= ((prev & lower) == lower) & ((prev & higher) == 0)
                cand = dp[prev] + dist_t[None, :, :]  # [mask, c, c'] = dp[prev, c'] + d(c', c)
                best = cand.argmin(axis=2)
                val = cand.min(axis=2)  # cheaper than gathering at `best` for small arrays
                val[~has] = INF
                dp[chunk] = val
                parent[chunk] = best
        self.final = dp[(1 << m) - 1].copy() if m else np.zeros(0)
        self._parent = parent

    def path_from(self, slot: int) -> list[int]:
        """Slots from `slot` (a full-mask end) back to the path's `init` end."""
        mask = (1 << self.m) - 1
        seq = [slot]
        while mask != self.gbit[slot]:
            nxt = int(self._parent[mask, slot])
            mask ^= int(self.gbit[slot])
            slot = nxt
            seq.append(slot)
        return seq
