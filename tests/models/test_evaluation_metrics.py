"""Metric formulas on hand-computed examples (Reality Check definitions)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp

from models.evaluation.metrics import evaluate_recommendations, per_user_metrics


def rows(sets: list[set[int]], n_items: int = 10) -> sp.csr_matrix:
    r = [i for i, s in enumerate(sets) for _ in s]
    c = [j for s in sets for j in sorted(s)]
    return sp.csr_matrix((np.ones(len(c)), (r, c)), shape=(len(sets), n_items))


def test_recall_ndcg_phr_by_hand() -> None:
    recs = np.array([[1, 2, 3], [4, 5, 6]])
    truth = rows([{2, 7}, {9}])
    m = per_user_metrics(recs, truth, k=3)
    assert m["recall"].tolist() == [0.5, 0.0]
    # One hit at rank 2 (discount 1/log2(3)); IDCG over both truth items.
    expected = (1 / math.log2(3)) / (1 + 1 / math.log2(3))
    assert m["ndcg"][0] == pytest.approx(expected)
    assert m["ndcg"][1] == 0.0
    assert m["phr"].tolist() == [1.0, 0.0]


def test_idcg_sums_over_all_truth_items_not_min_k() -> None:
    recs = np.array([[5]])
    truth = rows([{5, 6, 7}])
    m = per_user_metrics(recs, truth, k=1)
    # Perfect top-1, yet NDCG < 1 because IDCG counts all three truth items.
    assert m["ndcg"][0] == pytest.approx(1 / (1 + 1 / math.log2(3) + 1 / math.log2(4)))
    assert m["recall"][0] == pytest.approx(1 / 3)


def test_padding_never_hits_and_k_truncates() -> None:
    recs = np.array([[-1, 0, 3]])
    truth = rows([{0, 3}])
    assert per_user_metrics(recs, truth, k=2)["recall"][0] == 0.5
    assert per_user_metrics(recs, truth, k=3)["recall"][0] == 1.0
    # The hit at rank 2 (index 1) is discounted by 1/log2(3).
    idcg = 1 + 1 / math.log2(3)
    assert per_user_metrics(recs, truth, k=2)["ndcg"][0] == pytest.approx(
        (1 / math.log2(3)) / idcg
    )


def test_repeat_and_explore_recall_average_over_users_that_have_them() -> None:
    recs = np.array([[1, 2], [3, 4]])
    truth = rows([{1, 8}, {3}])
    history = rows([{1}, {5}])
    out = evaluate_recommendations(recs, truth, history, ks=(2,))
    # User 0: repeat truth {1} fully hit; explore truth {8} missed.
    # User 1: no repeat truth (excluded); explore truth {3} hit.
    assert out["repeat_recall@2"] == 1.0
    assert out["explore_recall@2"] == 0.5
    assert out["recall@2"] == pytest.approx((0.5 + 1.0) / 2)
    assert out["phr@2"] == 1.0
    assert out["users"] == 2
