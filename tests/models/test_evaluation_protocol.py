"""The protocol: filters, history/target split, user splits, no target leakage."""

from __future__ import annotations

import numpy as np

from models.datasets import build_dataset
from models.evaluation.harness import fit_data
from models.evaluation.protocol import (
    filter_dataset,
    keyset_splits,
    make_task,
    mask_targets,
    random_splits,
)


def test_user_filter_keeps_3_to_50_baskets() -> None:
    users, baskets = [], []
    for u, n in enumerate([2, 3, 50, 51]):
        users += [u] * n
        baskets += list(range(n))
    ds = build_dataset("t", users, baskets, ["x"] * len(users))
    kept = filter_dataset(ds).baskets_per_user()
    assert kept.tolist() == [0, 3, 50, 0]


def test_item_filter_counts_history_only() -> None:
    # "rare" appears 2x in history and 5x in targets: the target copies must not count.
    users = [0, 0, 1, 1, *list(range(2, 7))]
    baskets = [0, 1, 0, 1] + [1] * 5
    items = ["rare", "x", "rare", "x"] + ["rare"] * 5
    users += list(range(2, 7))
    baskets += [0] * 5
    items += ["x"] * 5
    ds = build_dataset("t", users, baskets, items)
    out = filter_dataset(ds, min_item_count=3)
    assert ds.item_ids.index("rare") not in set(out.item.tolist())


def test_task_splits_history_and_targets() -> None:
    ds = build_dataset("t", [1, 1, 1, 1], [0, 1, 2, 2], ["a", "b", "c", "a"])
    task = make_task(ds)
    assert task.targets.toarray().tolist() == [[1.0, 0.0, 1.0]]
    assert task.history_counts.toarray().tolist() == [[1.0, 1.0, 0.0]]


def test_random_splits_are_disjoint_deterministic_72_8_20() -> None:
    users = np.arange(1000)
    a = random_splits(users)
    b = random_splits(users)
    assert len(a) == 5
    for s, t in zip(a, b, strict=True):
        assert (len(s.train), len(s.val), len(s.test)) == (720, 80, 200)
        assert np.array_equal(s.test, t.test)
        assert not set(s.train) & set(s.test) and not set(s.val) & set(s.test)
    assert not np.array_equal(a[0].test, a[1].test)


def test_keyset_splits_map_ids_and_skip_filtered_users() -> None:
    ds = build_dataset("t", [10, 10, 10, 20], [0, 1, 2, 0], ["a", "b", "c", "a"])
    users = np.array([ds.user_ids.index("10")])
    (split,) = keyset_splits(ds, users, [{"train": ["20"], "val": [], "test": ["10", "99"]}])
    assert split.test.tolist() == [ds.user_ids.index("10")] and split.train.size == 0


def test_models_never_see_test_targets() -> None:
    ds = build_dataset("t", [0, 0, 0, 1, 1, 1], [0, 1, 2, 0, 1, 2], list("abcabd"))
    task = make_task(ds)
    (split,) = random_splits(task.users, seeds=[0], shares=(0.5, 0.0, 0.5))
    data = fit_data(task, split)
    assert data.targets[split.test].nnz == 0
    assert data.targets[split.train].nnz == task.targets[split.train].nnz
    assert mask_targets(task.targets, np.array([], dtype=np.int64)).nnz == 0
