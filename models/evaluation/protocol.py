"""The "Next Basket Recommendation Reality Check" protocol (Li et al., TOIS 2023).

- Each user's last basket is the target; all earlier baskets are history.
- Only users with 3–50 baskets are evaluated.
- Optionally (Complete Journey) items seen fewer than ``min_item_count`` times in the
  history are dropped first, so the target only holds items a model could have learnt.
- Five user splits 72 / 8 / 20 % (train / val / test): the shipped keysets for Ta-Feng,
  otherwise generated with seeds 0..4. Figures are means over the test users of the
  five splits.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from models.datasets.base import BasketDataset
from models.nbr.matrices import BasketMatrix, basket_matrix, user_item_counts

logger = logging.getLogger(__name__)

# The protocol's user filter: at least two history baskets plus the target, and at most
# 50 baskets so a handful of very frequent shoppers cannot dominate the means.
MIN_BASKETS = 3
MAX_BASKETS = 50
# Complete Journey's item filter from the brief: items seen fewer times in the history
# cannot be learnt and mostly add noise to the target baskets.
COMPLETEJOURNEY_MIN_ITEM_COUNT = 17
# Split shares and seeds used whenever a dataset ships no keysets.
SPLIT_SHARES = (0.72, 0.08, 0.20)
SPLIT_SEEDS = (0, 1, 2, 3, 4)


@dataclass(frozen=True)
class Split:
    """User codes of one train / val / test split."""

    seed: int
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray


@dataclass(frozen=True)
class NbrTask:
    """History (everything but each user's last basket) and the target baskets.

    ``targets`` is a users × items binary CSR; models get a copy with only the rows of
    the users they may learn from (see :func:`mask_targets`).
    """

    dataset: BasketDataset
    history: BasketDataset
    history_baskets: BasketMatrix
    history_counts: sp.csr_matrix
    targets: sp.csr_matrix
    target_ts: np.ndarray  # float64 per user: time of the target basket (NaN if none)
    users: np.ndarray  # user codes that pass the filters

    @property
    def n_items(self) -> int:
        return self.dataset.n_items

    @property
    def n_users(self) -> int:
        return self.dataset.n_users


def filter_dataset(ds: BasketDataset, min_item_count: int | None = None) -> BasketDataset:
    """Apply the item filter (if any), then the 3–50 baskets user filter."""
    if min_item_count:
        n_b = ds.baskets_per_user()
        in_history = ds.basket < (n_b[ds.user] - 1)
        counts = np.bincount(ds.item[in_history], minlength=ds.n_items)
        keep_item = counts >= min_item_count
        ds = ds.select_rows(keep_item[ds.item])
        logger.info("item filter >= %d: kept %d items", min_item_count, int(keep_item.sum()))
    n_b = ds.baskets_per_user()
    keep_user = (n_b >= MIN_BASKETS) & (n_b <= MAX_BASKETS)
    logger.info(
        "user filter %d-%d baskets: kept %d of %d users",
        MIN_BASKETS,
        MAX_BASKETS,
        int(keep_user.sum()),
        int((n_b > 0).sum()),
    )
    return ds.select_rows(keep_user[ds.user])


def make_task(ds: BasketDataset) -> NbrTask:
    """Split an (already filtered) dataset into history and targets."""
    history, last = ds.drop_last_baskets()
    targets = sp.csr_matrix(
        (np.ones(last.n_rows, dtype=np.float32), (last.user, last.item)),
        shape=(ds.n_users, ds.n_items),
    )
    targets.sum_duplicates()
    targets.data[:] = 1.0
    target_ts = np.full(ds.n_users, np.nan)
    target_ts[last.user] = last.ts
    bm = basket_matrix(history)
    users = np.flatnonzero(ds.baskets_per_user() > 0).astype(np.int64)
    return NbrTask(
        dataset=ds,
        history=history,
        history_baskets=bm,
        history_counts=user_item_counts(bm, ds.n_users),
        targets=targets,
        target_ts=target_ts,
        users=users,
    )


def mask_targets(targets: sp.csr_matrix, allowed_users: np.ndarray) -> sp.csr_matrix:
    """Targets with every row outside ``allowed_users`` emptied (no test leakage)."""
    keep = np.zeros(targets.shape[0], dtype=np.float32)
    keep[allowed_users] = 1.0
    return sp.diags(keep).dot(targets).tocsr()


def random_splits(
    users: np.ndarray, seeds: Sequence[int] = SPLIT_SEEDS, shares: Sequence[float] = SPLIT_SHARES
) -> list[Split]:
    """72/8/20 splits of the given user codes, one per seed."""
    splits = []
    users = np.sort(np.asarray(users, dtype=np.int64))
    n_train = round(shares[0] * len(users))
    n_val = round(shares[1] * len(users))
    for seed in seeds:
        perm = np.random.default_rng(seed).permutation(users)
        splits.append(
            Split(
                seed=seed,
                train=np.sort(perm[:n_train]),
                val=np.sort(perm[n_train : n_train + n_val]),
                test=np.sort(perm[n_train + n_val :]),
            )
        )
    return splits


def keyset_splits(
    ds: BasketDataset, users: np.ndarray, keysets: Sequence[Mapping[str, Sequence[str]]]
) -> list[Split]:
    """Splits from shipped keysets (user ids as strings); users filtered out are skipped."""
    code = {uid: i for i, uid in enumerate(ds.user_ids)}
    eligible = np.zeros(ds.n_users, dtype=bool)
    eligible[users] = True
    splits = []
    for seed, ks in enumerate(keysets):
        parts = {}
        for part in ("train", "val", "test"):
            codes = np.array([code[u] for u in ks[part] if u in code], dtype=np.int64)
            parts[part] = np.sort(codes[eligible[codes]])
            dropped = len(ks[part]) - len(parts[part])
            if dropped:
                logger.info("keyset %d %s: %d users outside the filters", seed, part, dropped)
        splits.append(Split(seed=seed, **parts))
    return splits
