"""Generated lake history for the tests and the benchmark (nothing real): a store's POS
sales as the uplink writes them, through `Lake.write_batch`.

Active shoppers come back until the end (they are the held-out shoppers); lapsed ones
stopped before the held-out weeks and only ever train. `corrupt_lapsed` replaces the
lapsed shoppers' last baskets with products they never bought before: a candidate trained on
that history learns that habits do not repeat, while the held-out shoppers' own states stay
real (how the gate's refusal is tested).
Anonymous sales and zone counts are mixed in, as in a real store's traffic.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import numpy as np

from cloud_sync.link.batch import Batch
from models.datasets.synthetic import ITEMS_PER_CATEGORY, SECONDS_PER_DAY, generate_baskets
from models.nbr.ranker import MAX_AUTO_SHIFTS

N_ITEMS = 150
EVENTS_PER_BATCH = 2_500  # the uplink's batch size
ANONYMOUS_SHARE = 0.25  # one sale in four has no consenting shopper
# The ranker learns from each shopper's last basket and up to MAX_AUTO_SHIFTS before it
# (history shifts): those are what corruption replaces. Fewer would leave the older
# training examples clean, and the candidate would learn real habits from them anyway.
CORRUPT_LAST_BASKETS = 1 + MAX_AUTO_SHIFTS


def product_id(item: int) -> str:
    return f"prod-{item:04d}"


def catalog() -> dict[str, str]:
    """Product id -> category, as the chain's catalog gives it."""
    return {product_id(i): f"cat{i // ITEMS_PER_CATEGORY:03d}" for i in range(N_ITEMS)}


def store_events(store_id: str, end: datetime, *, active: int = 120, lapsed: int = 0,
                 holdout_weeks: int = 4, corrupt_lapsed: bool = False, pace: float = 1.0,
                 seed: int = 0) -> list[dict[str, Any]]:
    """Sales (and a few zone counts) of one store, every shopper's last visit near `end`
    (active) or before the held-out weeks (lapsed). `pace` scales the days between visits
    (2 to 10 at 1.0): below 1, the same baskets over fewer days, so fewer lake partitions."""
    rng = np.random.default_rng(seed)
    ds = generate_baskets(n_users=active + lapsed, n_items=N_ITEMS, min_baskets=10,
                          max_baskets=24, seed=seed)
    end_ts = end.timestamp()
    starts = ds.basket_starts()
    times = ds.ts * pace
    last_ts = np.full(ds.n_users, -np.inf)
    np.maximum.at(last_ts, ds.user[starts[:-1]], times[starts[:-1]])
    cutoff_ts = end_ts - holdout_weeks * 7 * SECONDS_PER_DAY
    shift = np.where(np.arange(ds.n_users) < active,
                     end_ts - rng.uniform(0.2, 3.0, ds.n_users) * SECONDS_PER_DAY,
                     cutoff_ts - rng.uniform(1.0, 30.0, ds.n_users) * SECONDS_PER_DAY) - last_ts
    events: list[dict[str, Any]] = []
    seen: dict[int, set[int]] = {}
    baskets_left = ds.baskets_per_user()
    for b in range(len(starts) - 1):
        lo, hi = int(starts[b]), int(starts[b + 1])
        user = int(ds.user[lo])
        items = [int(ds.item_ids[i]) for i in ds.item[lo:hi]]
        bought = seen.setdefault(user, set())
        if corrupt_lapsed and user >= active and baskets_left[user] <= CORRUPT_LAST_BASKETS:
            items = _never_bought(bought, len(items), rng)
        bought.update(items)
        baskets_left[user] -= 1
        when = times[lo] + shift[user]
        events.append(_sale(store_id, f"psn-{store_id}-{user:05d}", items, when, rng))
        if rng.random() < ANONYMOUS_SHARE:
            anonymous = rng.integers(0, N_ITEMS, int(rng.integers(1, 6)))
            events.append(_sale(store_id, None, sorted(set(anonymous.tolist())),
                                when + 60.0, rng))
        if rng.random() < 0.05:
            events.append(_envelope(store_id, "zone.traffic", when)
                          | {"zone_id": "z1", "people": int(rng.integers(0, 30)),
                             "avg_dwell_s": 40.0})
    events.sort(key=lambda e: e["ts"])
    return events


def batches(store_id: str, events: list[dict[str, Any]]) -> Iterator[Batch]:
    for n, start in enumerate(range(0, len(events), EVENTS_PER_BATCH)):
        yield Batch(store_id, f"synthetic-{store_id}-{n:06d}",
                    events[start:start + EVENTS_PER_BATCH])


def write_store(lake: Any, store_id: str, end: datetime, **kwargs: Any) -> int:
    """Write a store's generated history to the lake; returns the events written."""
    events = store_events(store_id, end, **kwargs)
    for batch in batches(store_id, events):
        lake.write_batch(batch)
    return len(events)


def _never_bought(seen: set[int], size: int, rng: np.random.Generator) -> list[int]:
    fresh = np.setdiff1d(np.arange(N_ITEMS), sorted(seen))
    return sorted(int(i) for i in rng.choice(fresh, min(size, len(fresh)), replace=False))


def _sale(store_id: str, customer: str | None, items: list[int], when: float,
          rng: np.random.Generator) -> dict[str, Any]:
    lines = [{"product_id": product_id(i), "quantity": 1.0,
              "unit_price": round(1.0 + (i % 17) * 0.5, 2), "discount": 0.0} for i in items]
    return _envelope(store_id, "pos.transaction", when) | {
        "transaction_id": f"t-{int(rng.integers(0, 2**62)):016x}",
        "customer_id": customer, "items": lines,
        "total": round(sum(line["unit_price"] for line in lines), 2)}


def _envelope(store_id: str, kind: str, when: float) -> dict[str, Any]:
    ts = datetime.fromtimestamp(when, UTC)
    return {"event_id": str(uuid.uuid4()), "store_id": store_id, "type": kind,
            "ts": ts.isoformat().replace("+00:00", "Z")}
