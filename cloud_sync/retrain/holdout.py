"""The time split of a retraining run: every basket before the cutoff is history (what the
candidate trains on, and what the shoppers' states are built from), the weeks after it are
held out. A held-out shopper has history and comes back in the held-out weeks; their first
basket after the cutoff is the next-basket target, and for each category they bought before,
the days from the cutoff to their next purchase of it are the timing label (capped at the
held-out weeks: a later or no purchase is "not within the window").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.datasets.base import BasketDataset

SECONDS_PER_DAY = 86_400.0


@dataclass(frozen=True)
class Basket:
    items: list[str]
    ts: float
    categories: list[str] | None
    quantities: list[float]
    spend: float


@dataclass(frozen=True)
class HeldOutShopper:
    user_id: str
    history: list[Basket]  # oldest first, all before the cutoff
    target_items: list[str]  # the first basket after the cutoff
    target_ts: float
    # Per category bought in the history: days from the cutoff to its next purchase, capped.
    category_days: dict[str, float]


def split_history(ds: BasketDataset, cutoff_ts: float) -> BasketDataset:
    """The baskets before the cutoff (what a candidate may learn from)."""
    return ds.select_rows(ds.ts < cutoff_ts)


def history_shoppers(ds: BasketDataset, cutoff_ts: float, min_baskets: int) -> int:
    """Shoppers with at least ``min_baskets`` baskets before the cutoff."""
    starts = ds.basket_starts()[:-1]
    before = starts[ds.ts[starts] < cutoff_ts]
    per_user = np.bincount(ds.user[before], minlength=ds.n_users)
    return int((per_user >= min_baskets).sum())


def held_out_shoppers(ds: BasketDataset, cutoff_ts: float, window_days: float,
                      max_shoppers: int, seed: int = 0) -> list[HeldOutShopper]:
    """Shoppers with history before the cutoff and a basket in the window after it; a random
    sample of ``max_shoppers`` when there are more (fixed by ``seed``)."""
    starts = ds.basket_starts()
    first = starts[:-1]
    basket_user, basket_ts = ds.user[first], ds.ts[first]
    end_ts = cutoff_ts + window_days * SECONDS_PER_DAY
    has_before = np.zeros(ds.n_users, bool)
    has_before[basket_user[basket_ts < cutoff_ts]] = True
    has_after = np.zeros(ds.n_users, bool)
    has_after[basket_user[(basket_ts >= cutoff_ts) & (basket_ts < end_ts)]] = True
    users = np.flatnonzero(has_before & has_after)
    if len(users) > max_shoppers:
        users = np.sort(np.random.default_rng(seed).choice(users, max_shoppers, replace=False))
    by_user: dict[int, list[int]] = {int(u): [] for u in users}
    for b, u in enumerate(basket_user):
        if int(u) in by_user and basket_ts[b] < end_ts:
            by_user[int(u)].append(b)
    shoppers = []
    for u, basket_numbers in by_user.items():
        baskets = [_basket(ds, int(starts[b]), int(starts[b + 1])) for b in basket_numbers]
        before = [b for b in baskets if b.ts < cutoff_ts]
        after = sorted((b for b in baskets if b.ts >= cutoff_ts), key=lambda b: b.ts)
        shoppers.append(HeldOutShopper(
            user_id=ds.user_ids[u], history=sorted(before, key=lambda b: b.ts),
            target_items=after[0].items, target_ts=after[0].ts,
            category_days=_category_days(before, after, cutoff_ts, window_days)))
    return shoppers


def _basket(ds: BasketDataset, lo: int, hi: int) -> Basket:
    categories = None
    if ds.category is not None and ds.category_names is not None:
        categories = [ds.category_names[c] for c in ds.category[lo:hi]]
    quantities = ([1.0] * (hi - lo) if ds.quantity is None
                  else [float(q) for q in ds.quantity[lo:hi]])
    spend = 0.0 if ds.price is None else float(ds.price[lo:hi].sum())
    return Basket(items=[ds.item_ids[i] for i in ds.item[lo:hi]], ts=float(ds.ts[lo]),
                  categories=categories, quantities=quantities, spend=spend)


def _category_days(before: list[Basket], after: list[Basket], cutoff_ts: float,
                   window_days: float) -> dict[str, float]:
    if not before or before[0].categories is None:
        return {}
    days = {c: window_days for b in before for c in b.categories or ()}
    for basket in after:  # oldest first: the first purchase after the cutoff wins
        for c in basket.categories or ():
            if c in days:
                days[c] = min(days[c], (basket.ts - cutoff_ts) / SECONDS_PER_DAY)
    return days
