"""Shopper-neighbour (knn_*) scores: what similar shoppers buy, never the shopper's own
history counted as a neighbour, the same for a shopper alone (serving) or in a block."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from models.datasets import build_dataset
from models.datasets.synthetic import generate_baskets
from models.features.nbr import FEATURE_NAMES, build_state_table, candidate_features
from models.features.nbr_neighbours import (
    KEPT_ITEMS,
    NEAR_NEIGHBOURS,
    neighbour_scores,
)
from models.features.nbr_stats import ItemStats, fit_item_stats


def _stores_with_two_tastes() -> tuple:
    """Shoppers 0-2 buy bread with butter, 3-5 beer with chips; shopper 6 bought bread
    once and nothing else, shopper 7 bought beer once."""
    users, baskets, items = [], [], []
    basket = 0
    for user, pair in [(0, ("bread", "butter")), (1, ("bread", "butter")),
                       (2, ("bread", "butter")), (3, ("beer", "chips")),
                       (4, ("beer", "chips")), (5, ("beer", "chips"))]:
        for _ in range(3):
            for item in pair:
                users.append(user), baskets.append(basket), items.append(item)
            basket += 1
    for user, item in [(6, "bread"), (7, "beer")]:
        users.append(user), baskets.append(basket), items.append(item)
        basket += 1
    ds = build_dataset("tastes", users, baskets, items)
    return ds, fit_item_stats(ds)


def test_neighbours_suggest_what_similar_shoppers_buy() -> None:
    ds, stats = _stores_with_two_tastes()
    code = {name: i for i, name in enumerate(ds.item_ids)}
    scores = neighbour_scores(build_state_table(ds, np.arange(ds.n_users)), stats.shopper_pool)
    for name, m in scores.items():
        m = _dense(m)
        # The bread buyer is steered to butter, not chips; the beer buyer the other way.
        assert m[6, code["butter"]] > 0 and m[6, code["chips"]] == 0, name
        assert m[7, code["chips"]] > 0 and m[7, code["butter"]] == 0, name


def test_a_shopper_is_never_their_own_neighbour() -> None:
    # Alone in the pool with their own history: nobody else to learn from, so no score,
    # although their own vector (similarity 1) is in the pool.
    ds = build_dataset("one", [0, 0, 0], [0, 0, 1], ["tea", "milk", "tea"])
    stats = fit_item_stats(ds)
    assert stats.shopper_pool.shape[0] == 1
    scores = neighbour_scores(build_state_table(ds, np.arange(1)), stats.shopper_pool)
    assert all(not _dense(m).any() for m in scores.values())


def _dense(m: np.ndarray | sp.csr_matrix) -> np.ndarray:
    return m.toarray() if sp.issparse(m) else m


def test_scores_of_a_shopper_alone_equal_their_scores_in_a_block() -> None:
    """Serving scores one shopper, dense; training scores blocks of hundreds, sparse: the
    same numbers."""
    ds = generate_baskets(n_users=300, n_items=400, seed=5)
    stats = fit_item_stats(ds)
    table = build_state_table(ds, np.arange(ds.n_users))
    block = neighbour_scores(table, stats.shopper_pool, dense=False)
    assert all(sp.issparse(m) for m in block.values())
    for user in (0, 137, 299):
        alone = neighbour_scores(table.take(np.array([user])), stats.shopper_pool)
        assert all(isinstance(m, np.ndarray) for m in alone.values())
        for name, m in block.items():
            np.testing.assert_allclose(alone[name][0], m[user].toarray()[0],
                                       rtol=1e-5, atol=1e-7)
    # Every shopper keeps at most the KEPT_ITEMS best items (plus exact ties).
    assert np.diff(block["knn_wide"].indptr).max() <= KEPT_ITEMS + 5


def test_near_and_wide_circles_differ_when_the_pool_is_large() -> None:
    ds = generate_baskets(n_users=4 * NEAR_NEIGHBOURS, n_items=300, seed=6)
    stats = fit_item_stats(ds)
    scores = neighbour_scores(build_state_table(ds, np.arange(20)), stats.shopper_pool)
    assert (_dense(scores["knn_near"]) != _dense(scores["knn_wide"])).any()


def test_features_read_the_neighbour_scores_and_the_pool_survives_a_round_trip(
    tmp_path: Path,
) -> None:
    ds, stats = _stores_with_two_tastes()
    path = tmp_path / "stats.npz"
    stats.save(path)
    back = ItemStats.load(path)
    assert (back.shopper_pool != stats.shopper_pool).nnz == 0
    table = build_state_table(ds, np.array([6]))
    items = np.arange(ds.n_items)
    x = candidate_features(table, np.zeros_like(items), items, back, float("nan"))
    near = x[:, FEATURE_NAMES.index("knn_near")]
    expected = _dense(neighbour_scores(table, stats.shopper_pool)["knn_near"])
    assert near[ds.item_ids.index("butter")] == pytest.approx(
        expected[0, ds.item_ids.index("butter")]) and expected.any()
    assert near[ds.item_ids.index("chips")] == 0
