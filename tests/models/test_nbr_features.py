"""Ranker features: incremental shopper state == batch state; values by hand."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from models.datasets import build_dataset
from models.datasets.synthetic import SECONDS_PER_DAY, generate_baskets
from models.features.nbr import (
    DECAY_FAST,
    DECAY_SLOW,
    FEATURE_NAMES,
    FEATURE_SCHEMA_VERSION,
    MISSING,
    ShopperState,
    build_state_table,
    candidate_features,
    candidate_scores,
)
from models.features.nbr_stats import ItemStats, fit_item_stats
from models.nbr.candidates import CandidateConfig, generate_candidates

DAY = SECONDS_PER_DAY


def feature(x: np.ndarray, name: str) -> np.ndarray:
    return x[:, FEATURE_NAMES.index(name)]


def test_schema_is_named_and_versioned() -> None:
    assert len(FEATURE_NAMES) == len(set(FEATURE_NAMES))
    assert FEATURE_SCHEMA_VERSION


def test_incremental_state_equals_batch_state_and_features() -> None:
    ds = generate_baskets(n_users=25, n_items=60, seed=1)
    stats = fit_item_stats(ds)
    users = np.arange(ds.n_users)
    batch = build_state_table(ds, users)
    now = 1_800_000_000.0
    for u in (0, 7, 24):
        state = ShopperState()
        for basket, ts in zip(ds.user_baskets(u), _basket_times(ds, u), strict=True):
            cats = [ds.category_names[c] for c in _category_of(ds)[basket]]
            state.update([ds.item_ids[i] for i in basket], ts, categories=cats)
        # The state survives a JSON round trip (serving persists it).
        state = ShopperState.from_dict(json.loads(json.dumps(state.to_dict())))
        one = state.to_table(
            {name: code for code, name in enumerate(ds.item_ids)},
            {name: code for code, name in enumerate(ds.category_names)},
        )
        assert one.categories is not None
        items = np.arange(ds.n_items)
        x_inc = candidate_features(one, np.zeros_like(items), items, stats, now)
        x_bat = candidate_features(batch.take(np.array([u])), np.zeros_like(items), items,
                                  stats, now)
        np.testing.assert_allclose(x_inc, x_bat, rtol=1e-6, atol=1e-6)
        assert x_inc.shape == (ds.n_items, len(FEATURE_NAMES)) and x_inc.dtype == np.float32


def _category_of(ds) -> np.ndarray:
    out = np.full(ds.n_items, -1)
    out[ds.item] = ds.category
    return out


def _basket_times(ds, u: int) -> list[float]:
    rows = np.flatnonzero(ds.user == u)
    _, first = np.unique(ds.basket[rows], return_index=True)
    return ds.ts[rows[first]].tolist()


def test_repurchase_cycle_features_by_hand() -> None:
    # Milk every 2 visits, visits every 3 days; asked 6 days after the last visit.
    state = ShopperState()
    baskets = [["milk", "tea"], ["bread"], ["milk"], ["bread"], ["milk", "bread"]]
    codes = {"milk": 0, "tea": 1, "bread": 2, "jam": 3}
    for b, items in enumerate(baskets):
        state.update(items, ts=b * 3 * DAY)
    stats = _flat_stats(4)
    now = 4 * 3 * DAY + 6 * DAY
    x = candidate_features(state.to_table(codes), np.zeros(4, np.int64), np.arange(4), stats,
                           now)
    milk, tea, jam = x[0], x[1], x[3]
    f = {n: i for i, n in enumerate(FEATURE_NAMES)}
    assert milk[f["ui_count"]] == 3 and milk[f["ui_share"]] == pytest.approx(0.6)
    assert milk[f["ui_baskets_since"]] == 0
    assert milk[f["ui_mean_gap_baskets"]] == 2 and milk[f["ui_last_gap_baskets"]] == 2
    assert milk[f["ui_due_baskets"]] == pytest.approx(0.5)  # next visit is 1 of 2
    assert milk[f["ui_days_since"]] == pytest.approx(6)
    assert milk[f["ui_mean_gap_days"]] == pytest.approx(6)
    assert milk[f["ui_due_days"]] == pytest.approx(1.0)  # due today
    assert milk[f["ui_decayed_fast"]] == pytest.approx(1 + DECAY_FAST**2 + DECAY_FAST**4)
    assert milk[f["ui_decayed_slow"]] == pytest.approx(1 + DECAY_SLOW**2 + DECAY_SLOW**4)
    assert tea[f["ui_mean_gap_baskets"]] == MISSING and tea[f["ui_baskets_since"]] == 4
    assert jam[f["ui_count"]] == 0 and jam[f["ui_days_since"]] == MISSING
    assert milk[f["u_days_since_visit"]] == pytest.approx(6)
    assert milk[f["u_mean_visit_gap_days"]] == pytest.approx(3)
    # 7 lines; milk twice, bread twice were bought before.
    assert milk[f["u_repeat_share"]] == pytest.approx(4 / 7)


def test_category_level_features_by_hand() -> None:
    # Two brands of milk alternate: each brand every 2nd visit, the category every visit.
    state = ShopperState()
    for b in range(4):
        brand = "milk-a" if b % 2 == 0 else "milk-b"
        state.update([brand], ts=float(b), categories=["dairy"])
    stats = _flat_stats(2)
    stats.item_category[:] = 0
    x = candidate_features(state.to_table({"milk-a": 0, "milk-b": 1}, {"dairy": 0}),
                           np.zeros(2, np.int64), np.arange(2), stats, float("nan"))
    f = {n: i for i, n in enumerate(FEATURE_NAMES)}
    assert x[:, f["uc_share"]].tolist() == [1.0, 1.0]
    assert x[:, f["uc_item_share"]].tolist() == [0.5, 0.5]
    assert x[:, f["uc_due_baskets"]].tolist() == [1.0, 1.0]
    assert x[:, f["ui_due_baskets"]].tolist() == [1.0, 0.5]  # milk-a is due, milk-b not


def test_state_drops_products_the_model_does_not_know() -> None:
    state = ShopperState()
    state.update(["known", "new-product"], ts=0.0)
    table = state.to_table({"known": 5})
    assert table.pair_item.tolist() == [5] and table.n_lines.tolist() == [2]


def test_time_features_are_missing_without_timestamps() -> None:
    state = ShopperState()
    state.update(["a", "b"])
    state.update(["a"])
    x = candidate_features(state.to_table({"a": 0, "b": 1}), np.zeros(2, np.int64), np.arange(2),
                           _flat_stats(2), float("nan"))
    for name in ("ui_days_since", "ui_mean_gap_days", "ui_due_days", "u_days_since_visit"):
        assert (feature(x, name) == MISSING).all()
    assert feature(x, "ui_mean_gap_baskets")[0] == 1


def _flat_stats(n: int) -> ItemStats:
    import scipy.sparse as sp

    empty = sp.csr_matrix((n, n), dtype=np.float32)
    return ItemStats(np.full(n, 0.1, np.float32), np.zeros(n, np.float32), empty, empty,
                     np.full(n, -1, np.int32), sp.csr_matrix((0, n), dtype=np.float32))


def test_copurchase_probabilities_and_round_trip(tmp_path: Path) -> None:
    # "chips" comes with "salsa" in 2 of its 3 baskets.
    ds = build_dataset(
        "t", [0, 0, 0, 0, 0, 1, 1], [0, 0, 1, 1, 2, 0, 1],
        ["chips", "salsa", "chips", "salsa", "chips", "milk", "milk"],
    )
    stats = fit_item_stats(ds)
    chips, salsa = ds.item_ids.index("chips"), ds.item_ids.index("salsa")
    from models.features.nbr_stats import COOC_SHRINK

    assert stats.basket_cooc[chips, salsa] == pytest.approx(2 / (3 + COOC_SHRINK))
    assert stats.basket_cooc[chips, chips] == 0
    assert stats.popularity[chips] == pytest.approx(3 / 5)
    path = tmp_path / "stats.npz"
    stats.save(path)
    back = ItemStats.load(path)
    assert (back.basket_cooc != stats.basket_cooc).nnz == 0
    np.testing.assert_array_equal(back.repeat_rate, stats.repeat_rate)


def test_candidates_cover_own_items_copurchase_neighbours_and_popular() -> None:
    ds = generate_baskets(n_users=30, n_items=80, seed=2)
    stats = fit_item_stats(ds)
    table = build_state_table(ds, np.arange(ds.n_users))
    cop = candidate_scores(table, stats)
    rows, items = generate_candidates(table, stats, cop, CandidateConfig(5, 3, 2))
    key = rows * 1000 + items
    assert len(np.unique(key)) == len(key)
    own = set((table.pair_row * 1000 + table.pair_item).tolist())
    assert own <= set(key.tolist())
    per_row = np.bincount(rows, minlength=table.n_shoppers)
    own_per_row = np.bincount(table.pair_row, minlength=table.n_shoppers)
    assert ((per_row - own_per_row) <= 10).all() and ((per_row - own_per_row) >= 1).all()


def test_dense_copurchase_for_few_shoppers_equals_the_sparse_product() -> None:
    """Serving computes co-purchase scores dense, training sparse: the same candidates and
    the same features either way, for one shopper and for several."""
    ds = generate_baskets(n_users=30, n_items=80, seed=3)
    stats = fit_item_stats(ds)
    for users in (np.arange(1), np.arange(ds.n_users)):
        table = build_state_table(ds, users)
        now = np.full(table.n_shoppers, float(np.nanmax(ds.ts)) + DAY)
        found = []
        for dense in (True, False):
            cop = candidate_scores(table, stats, dense=dense)
            rows, items = generate_candidates(table, stats, cop, CandidateConfig(5, 3, 2))
            found.append((rows, items, candidate_features(table, rows, items, stats,
                                                          now[rows], cop)))
        (rows_d, items_d, x_d), (rows_s, items_s, x_s) = found
        np.testing.assert_array_equal(rows_d, rows_s)
        np.testing.assert_array_equal(items_d, items_s)
        np.testing.assert_allclose(x_d, x_s, rtol=1e-6)
        assert (feature(x_d, "cop_basket") > 0).any()


def test_new_candidates_are_the_same_from_dense_and_sparse_scores_even_with_ties() -> None:
    """Serving picks a shopper's best new items from dense scores by partition, training
    from CSR by sorting: the same items, ties going to the lower item code."""
    ds = generate_baskets(n_users=12, n_items=60, seed=4)
    stats = fit_item_stats(ds)
    table = build_state_table(ds, np.arange(ds.n_users))
    rng = np.random.default_rng(0)
    # Few distinct values, so ties straddle every shopper's cut; some items unscored.
    scores = rng.integers(0, 4, size=(table.n_shoppers, ds.n_items)).astype(np.float64)
    found = []
    for matrix in (scores, sp.csr_matrix(scores)):
        cop = {"cop_basket": matrix, "cop_shopper": matrix * 0, "knn_wide": matrix}
        found.append(generate_candidates(table, stats, cop, CandidateConfig(7, 0, 5)))
    (rows_d, items_d), (rows_s, items_s) = found
    np.testing.assert_array_equal(rows_d, rows_s)
    np.testing.assert_array_equal(items_d, items_s)
    bought = set(zip(table.pair_row.tolist(), table.pair_item.tolist(), strict=True))
    for r in range(table.n_shoppers):
        new = [i for i in items_d[rows_d == r].tolist() if (r, i) not in bought]
        assert len(new) == 7  # n_copurchase; the neighbour picks are the same scores


def test_rank_features_follow_personal_frequency_then_recency() -> None:
    state = ShopperState()
    for basket in (["a", "b"], ["a", "c"], ["b"]):
        state.update(basket)
    x = candidate_features(state.to_table({"a": 0, "b": 1, "c": 2, "d": 3}),
                           np.zeros(4, np.int64), np.arange(4), _flat_stats(4), float("nan"))
    # a and b twice (b more recent), c once, d never.
    assert feature(x, "ui_rank_count").tolist() == [1, 0, 2, MISSING]


def test_state_of_no_baskets_is_empty_not_an_error() -> None:
    """A tiny store's history can leave a split with no line at all (training used to stop
    on an IndexError there)."""
    ds = generate_baskets(n_users=5, n_items=20, seed=2)
    for users in (np.arange(0), np.array([], dtype=np.int64)):
        table = build_state_table(ds, users)
        assert len(table.n_baskets) == 0 and len(table.pair_row) == 0
        assert table.categories is None or len(table.categories.pair_row) == 0
