"""Small generated basket data with realistic habits, for fast tests and demos.

Each shopper has a handful of *staples* bought on a personal cycle (every p-th visit,
with some slack), a *companion* item that tends to come with each staple (co-purchase),
and a few impulse buys drawn from a skewed catalogue-wide popularity. Visits are spaced
by a per-shopper typical gap in days, so both basket-index and time features carry
signal.
"""

from __future__ import annotations

import numpy as np

from models.datasets.base import BasketDataset, build_dataset

SECONDS_PER_DAY = 86_400.0
# 2024-01-01T00:00Z: an arbitrary, fixed start so generated timestamps are repeatable.
START_EPOCH = 1_704_067_200.0
# Probability a staple is bought on a visit when it is due / not due.
P_DUE = 0.9
P_OFF_CYCLE = 0.03
# Probability the staple's companion item joins it in the basket.
P_COMPANION = 0.5
# Items per product category (item i belongs to category i // ITEMS_PER_CATEGORY).
ITEMS_PER_CATEGORY = 10
# Zipf exponent of impulse-buy popularity (grocery sales are heavily skewed).
ZIPF_EXPONENT = 1.1


def generate_baskets(
    n_users: int = 300,
    n_items: int = 150,
    min_baskets: int = 8,
    max_baskets: int = 20,
    staples_per_user: int = 12,
    seed: int = 0,
    with_timestamps: bool = True,
) -> BasketDataset:
    """A synthetic :class:`BasketDataset` (deterministic for a given seed)."""
    rng = np.random.default_rng(seed)
    pop = 1.0 / np.arange(1, n_items + 1) ** ZIPF_EXPONENT
    pop /= pop.sum()
    companion = rng.permutation(n_items)
    users, baskets, items, times = [], [], [], []
    for u in range(n_users):
        staples = rng.choice(n_items, size=staples_per_user, replace=False, p=pop)
        period = rng.integers(1, 6, size=staples_per_user)
        phase = rng.integers(0, 4, size=staples_per_user)
        gap_days = rng.uniform(2.0, 10.0)
        t = START_EPOCH + rng.uniform(0, 30) * SECONDS_PER_DAY
        for b in range(int(rng.integers(min_baskets, max_baskets + 1))):
            due = (b + phase) % period == 0
            bought = staples[rng.random(staples_per_user) < np.where(due, P_DUE, P_OFF_CYCLE)]
            extra = companion[bought[rng.random(len(bought)) < P_COMPANION]]
            impulse = rng.choice(n_items, size=int(rng.integers(1, 4)), p=pop)
            basket = np.unique(np.concatenate([bought, extra, impulse]))
            users.extend([u] * len(basket))
            baskets.extend([b] * len(basket))
            items.extend(basket.tolist())
            times.extend([t] * len(basket))
            t += gap_days * rng.uniform(0.7, 1.3) * SECONDS_PER_DAY
    ts = np.array(times) if with_timestamps else None
    item_arr = np.array(items)
    return build_dataset(
        "synthetic", np.array(users), np.array(baskets), item_arr, ts=ts,
        category_keys=np.array([f"cat{i // ITEMS_PER_CATEGORY:03d}" for i in item_arr]),
        quantity=np.ones(len(items), dtype=np.float32),
    )
