"""UP-CF@r on a three-shopper example worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from models.datasets import build_dataset
from models.evaluation.harness import fit_data
from models.evaluation.protocol import Split, make_task
from models.nbr.upcf import UpCf, UpcfParams, asymmetric_cosine, user_popularity


def hand_task():
    """History (target last):
    user 0: {a,b} {a} {c} | {a}   -> profile {a,b,c}
    user 1: {a} {b}       | {x}   -> profile {a,b}
    user 2: {c,d} {d}     | {d}   -> profile {c,d}
    """
    rows = [
        (0, 0, "a"), (0, 0, "b"), (0, 1, "a"), (0, 2, "c"), (0, 3, "a"),
        (1, 0, "a"), (1, 1, "b"), (1, 2, "x"),
        (2, 0, "c"), (2, 0, "d"), (2, 1, "d"), (2, 2, "d"),
    ]
    users, baskets, items = zip(*rows, strict=True)
    return make_task(build_dataset("hand", list(users), list(baskets), list(items)))


def scores_by_name(task, params: UpcfParams, train: list[int]) -> dict[str, float]:
    split = Split(0, train=np.array(train), val=np.array([], np.int64), test=np.array([0]))
    model = UpCf(params)
    model.fit(fit_data(task, split))
    s = model.scores(np.array([0]))[0]
    return {name: float(s[code]) for code, name in enumerate(task.dataset.item_ids)}


def test_user_popularity_whole_history_and_last_basket() -> None:
    task = hand_task()
    names = task.dataset.item_ids
    whole = user_popularity(task.history_baskets, task.n_users, None).toarray()
    last = user_popularity(task.history_baskets, task.n_users, 1).toarray()
    col = {n: names.index(n) for n in "abcd"}
    assert whole[0, [col["a"], col["b"], col["c"]]] == pytest.approx([2 / 3, 1 / 3, 1 / 3])
    assert whole[2, [col["c"], col["d"]]] == pytest.approx([1 / 2, 1.0])
    assert last[0].sum() == pytest.approx(1.0) and last[0, col["c"]] == 1.0
    # A window longer than the history is the whole history.
    assert user_popularity(task.history_baskets, task.n_users, 25).toarray() == (
        pytest.approx(whole))


@pytest.mark.parametrize(("alpha", "expected"), [
    (0.5, [2 / np.sqrt(6), 1 / np.sqrt(6)]),  # plain cosine
    (1.0, [2 / 3, 1 / 3]),                    # overlap / |P_0|
    (0.0, [1.0, 1 / 2]),                      # overlap / |P_v|
])
def test_asymmetric_cosine(alpha: float, expected: list[float]) -> None:
    task = hand_task()
    prof = task.history_counts.tocsr()
    prof.data[:] = 1.0
    assert asymmetric_cosine(prof[[0]], prof[[1, 2]], alpha)[0] == pytest.approx(expected)


def test_scores_last_basket_asymmetric() -> None:
    # r=1, alpha=1, q=1: up_0 = {c:1}; + 2/3·{b:1} + 1/3·{d:1}.
    s = scores_by_name(hand_task(), UpcfParams(recency=1, alpha=1.0, q=1.0), [1, 2])
    assert s == pytest.approx({"a": 0.0, "b": 2 / 3, "c": 1.0, "d": 1 / 3, "x": 0.0})
    # q=2 sharpens the neighbour weights: 4/9 and 1/9.
    s = scores_by_name(hand_task(), UpcfParams(recency=1, alpha=1.0, q=2.0), [1, 2])
    assert s == pytest.approx({"a": 0.0, "b": 4 / 9, "c": 1.0, "d": 1 / 9, "x": 0.0})


def test_scores_whole_history_and_ranking() -> None:
    # r=∞, alpha=0 (sims 1 and 1/2), q=1:
    # a = 2/3 + 1/2, b = 1/3 + 1/2, c = 1/3 + 1/2·1/2, d = 1/2·1.
    task = hand_task()
    params = UpcfParams(recency=None, alpha=0.0, q=1.0)
    s = scores_by_name(task, params, [1, 2])
    assert s == pytest.approx({"a": 7 / 6, "b": 5 / 6, "c": 7 / 12, "d": 1 / 2, "x": 0.0})
    split = Split(0, train=np.array([1, 2]), val=np.array([], np.int64), test=np.array([0]))
    model = UpCf(params)
    model.fit(fit_data(task, split))
    names = task.dataset.item_ids
    top = [names[i] if i >= 0 else None for i in model.recommend(np.array([0]), 5)[0]]
    assert top == ["a", "b", "c", "d", None]  # x never bought by anyone in history


def test_own_history_counts_once_when_the_user_is_in_the_pool() -> None:
    params = UpcfParams(recency=1, alpha=1.0, q=1.0)
    with_self = scores_by_name(hand_task(), params, [0, 1, 2])
    without = scores_by_name(hand_task(), params, [1, 2])
    assert with_self == pytest.approx(without)


def test_neighbour_cut_keeps_only_the_most_similar_users() -> None:
    # r=1, alpha=1, q=1, one neighbour: only user 1 (sim 2/3) counts, user 2 (1/3) not.
    s = scores_by_name(hand_task(), UpcfParams(recency=1, alpha=1.0, q=1.0, n_neighbors=1),
                       [1, 2])
    assert s == pytest.approx({"a": 0.0, "b": 2 / 3, "c": 1.0, "d": 0.0, "x": 0.0})
    # A cut at least the pool's size changes nothing.
    full = scores_by_name(hand_task(), UpcfParams(recency=1, alpha=1.0, q=1.0), [1, 2])
    assert scores_by_name(hand_task(), UpcfParams(recency=1, alpha=1.0, q=1.0, n_neighbors=2),
                          [1, 2]) == pytest.approx(full)
