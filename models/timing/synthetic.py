"""Small generated basket data with known purchase cycles (tests, ``--dataset synthetic``).

Each shopper buys each of their categories on a personal cycle: the next purchase comes
``cycle x LogNormal(0, GAP_NOISE_SIGMA)`` days after the last one. Purchases on the same
day form one basket. Some shoppers stop shopping part-way (they should come out as
lapsed segments), and each shopper's spend per item is drawn once, so frequency and value
vary independently.
"""

from __future__ import annotations

import math

import numpy as np

from models.datasets.base import BasketDataset, build_dataset
from models.features.segments import SECONDS_PER_DAY

# Multiplicative noise on each gap: lognormal sigma 0.3 gives an 80% range of about
# x0.68 to x1.47 around the cycle, like a fairly regular household staple.
GAP_NOISE_SIGMA = 0.3
EPOCH_START = 1_483_228_800.0  # 2017-01-01T00:00:00Z, the same calendar as Complete Journey
SHOPPING_HOUR_SECONDS = 10 * 3600.0


def generate(
    n_users: int = 80,
    n_categories: int = 10,
    days: int = 360,
    seed: int = 0,
    lapsed_share: float = 0.15,
) -> BasketDataset:
    """A dataset whose true gap distribution per pair is known (see module docstring)."""
    rng = np.random.default_rng(seed)
    base_cycle = rng.uniform(4.0, 30.0, n_categories)  # category's typical gap, days
    users, days_col, cats, prices, qtys = [], [], [], [], []
    for u in range(n_users):
        end = days if rng.random() >= lapsed_share else int(rng.uniform(0.3, 0.6) * days)
        speed = rng.lognormal(0.0, 0.4)  # some households run out faster
        unit_price = rng.lognormal(1.0, 0.5)
        owned = rng.random(n_categories) < 0.7
        owned[rng.integers(n_categories)] = True
        for c in np.flatnonzero(owned):
            cycle = base_cycle[c] * speed
            t = rng.uniform(0, cycle)
            while t < end:
                users.append(u)
                days_col.append(math.floor(t))
                cats.append(int(c))
                qty = int(rng.integers(1, 3))
                qtys.append(qty)
                prices.append(qty * unit_price)
                t += max(cycle * rng.lognormal(0.0, GAP_NOISE_SIGMA), 1.0)
    day = np.asarray(days_col, dtype=np.int64)
    user = np.asarray(users, dtype=np.int64)
    cat = np.asarray(cats, dtype=np.int64)
    return build_dataset(
        f"synthetic-{seed}",
        user_keys=[f"u{u:04d}" for u in user],
        basket_keys=day,
        item_keys=[f"item{c:03d}" for c in cat],
        ts=EPOCH_START + day * SECONDS_PER_DAY + SHOPPING_HOUR_SECONDS,
        category_keys=[f"cat{c:03d}" for c in cat],
        quantity=np.asarray(qtys, dtype=np.float32),
        price=np.asarray(prices, dtype=np.float32),
    )
