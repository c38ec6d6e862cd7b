"""The learned ranker on generated habits: beats P-TopFreq, ONNX parity, serving path."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from models.datasets.synthetic import generate_baskets
from models.evaluation.harness import evaluate_model, fit_data
from models.evaluation.protocol import NbrTask, Split, filter_dataset, make_task, random_splits
from models.features.nbr import ShopperState
from models.nbr.candidates import CandidateConfig
from models.nbr.onnx_export import export_ranker
from models.nbr.ranker import (
    CandidateRows,
    NbrRanker,
    RankerConfig,
    auto_shifts,
    build_candidate_rows,
    example_weights,
    shifted_examples,
)
from models.nbr.scoring import OnnxRanker
from models.nbr.serve import NbrServingModel
from models.nbr.topfreq import PTopFreq
from models.nbr.train import train_ranker, write_artifacts

# Small trees and few rounds: the point is behaviour, in seconds.
FAST = RankerConfig(
    candidates=CandidateConfig(n_copurchase=20, n_popular=10),
    learning_rate=0.2,
    max_iter=40,
    min_samples_leaf=20,
    negative_sample_rate=1.0,
    history_shifts=1,
)


@pytest.fixture(scope="module")
def fitted() -> tuple[NbrTask, Split, NbrRanker]:
    ds = filter_dataset(generate_baskets(n_users=300, n_items=120, seed=7))
    task = make_task(ds)
    (split,) = random_splits(task.users, seeds=[0])
    model = NbrRanker(FAST)
    model.fit(fit_data(task, split))
    return task, split, model


def test_ranker_beats_personal_top_frequency_on_habitual_shoppers(fitted) -> None:
    task, split, model = fitted
    baseline = PTopFreq()
    baseline.fit(fit_data(task, split))
    ours = evaluate_model(model, task, split.test)
    theirs = evaluate_model(baseline, task, split.test)
    assert ours["recall@10"] > theirs["recall@10"] + 0.02
    assert ours["ndcg@10"] > theirs["ndcg@10"] + 0.02


def test_onnx_scores_match_sklearn_and_keep_top_k_order(fitted) -> None:
    task, split, model = fitted
    rows = build_candidate_rows(model.table, model.stats, split.test, task.target_ts,
                                FAST.candidates)
    onnx = OnnxRanker(export_ranker(model.model))
    sk = model.score_rows(rows)
    ox = onnx.score(rows.features)
    np.testing.assert_allclose(ox, sk, atol=1e-5)
    for u in split.test[:20]:
        sel = rows.users == u
        top_sk = rows.items[sel][np.lexsort((rows.items[sel], -sk[sel]))][:10]
        top_ox = rows.items[sel][np.lexsort((rows.items[sel], -ox[sel]))][:10]
        assert top_sk.tolist() == top_ox.tolist()


def test_serving_from_incremental_state_matches_offline_ranking(tmp_path: Path) -> None:
    ds = generate_baskets(n_users=150, n_items=100, seed=11)
    trained = train_ranker(ds, FAST)
    model = trained.model
    assert trained.summary["trees"] >= 1
    write_artifacts(model, ds.item_ids, tmp_path, trained.summary, ds.category_names)
    serving = NbrServingModel.load(tmp_path)
    task = make_task(filter_dataset(ds))  # the same history the ranker was fitted on
    for u in (0, 5, 42):
        state = ShopperState()
        history = task.history
        rows = np.flatnonzero(history.user == u)
        for b in np.unique(history.basket[rows]):
            sel = rows[history.basket[rows] == b]
            pids = [ds.item_ids[i] for i in history.item[sel]]
            state.update(pids, float(history.ts[sel[0]]), categories=serving.categories_of(pids))
        online = [pid for pid, _ in serving.recommend(state, now=task.target_ts[u], k=10)]
        offline = [ds.item_ids[i] for i in model.recommend(np.array([u]), 10)[0] if i >= 0]
        assert online == offline


def test_shifted_examples_label_the_basket_before_the_target() -> None:
    ds = generate_baskets(n_users=20, n_items=50, seed=3)
    history, _last = ds.drop_last_baskets()
    users = np.arange(ds.n_users)
    rows, y, _world = shifted_examples(history, users, FAST.candidates)
    for u in (0, 9):
        second_to_last = set(ds.user_baskets(u)[-2].tolist())
        positives = set(rows.items[(rows.users == u) & (y == 1)].tolist())
        # Every positive is in that basket; all of it that is a candidate is positive.
        assert positives and positives <= second_to_last
        candidates = set(rows.items[rows.users == u].tolist())
        assert positives == second_to_last & candidates


def test_validation_users_give_an_example_per_shift_and_never_train() -> None:
    """With two shifts each validation user is three examples (their last basket and the
    two before it), ranked and scored apart, and never a training row."""
    ds = filter_dataset(generate_baskets(n_users=200, n_items=80, seed=5))
    task = make_task(ds)
    (split,) = random_splits(task.users, seeds=[0])
    rows = NbrRanker(replace(FAST, history_shifts=2)).prepare(fit_data(task, split))
    assert not np.isin(rows.train.users, split.val).any()
    val, users = rows.val, np.sort(split.val)
    assert val.n_examples == 3 * len(users)  # every user has >= 3 baskets
    for i in (0, 7, len(users) - 1):
        baskets = ds.user_baskets(int(users[i]))
        for shift in range(3):
            example = shift * len(users) + i
            truth = set(val.truth[example].indices.tolist())
            assert truth == set(baskets[-1 - shift].tolist())
            mine = val.rows.users == example
            assert mine.any() and set(val.rows.items[mine & (val.y == 1)].tolist()) <= truth
            # What they had bought before that basket, as the metrics' repeat split sees it.
            before = set(np.concatenate(baskets[:-1 - shift]).tolist())
            assert set(val.seen[example].indices.tolist()) == before


def test_every_training_basket_weighs_the_same_whatever_its_size() -> None:
    """Recall@K counts each basket once: an example's positive rows share one unit of
    weight, and an example none of whose target items is a candidate trains nothing."""
    ds = filter_dataset(generate_baskets(n_users=300, n_items=120, seed=7))
    task = make_task(ds)
    (split,) = random_splits(task.users, seeds=[0])
    only_repeats = CandidateConfig(n_copurchase=0, n_popular=0, n_neighbour=0)
    data = fit_data(task, split)
    rows = NbrRanker(replace(FAST, candidates=only_repeats, history_shifts=0)).prepare(data)
    trained = np.unique(rows.train.users)
    positive_weight = np.bincount(rows.train.users, weights=rows.weight * rows.y)
    assert np.allclose(positive_weight[trained], 1.0)
    positives = np.bincount(rows.train.users, weights=rows.y)[trained]
    assert positives.min() < positives.max()  # baskets of several sizes
    # A shopper none of whose target items is a candidate (user 5) gets no weight.
    toy = CandidateRows(np.array([3, 3, 3, 5, 5, 8, 8]), np.arange(7), np.zeros((7, 1)))
    weights = example_weights(toy, np.array([1, 1, 0, 0, 0, 1, 0]))
    assert weights.tolist() == [0.5, 0.5, 0.5, 0.0, 0.0, 1.0, 1.0]


def test_a_history_with_nothing_to_learn_is_a_clear_error() -> None:
    """Every training shopper's last basket is new to them (and no candidate but their own
    items is asked for): the ranker says why it cannot train."""
    ds = filter_dataset(generate_baskets(n_users=120, n_items=60, seed=3))
    task = make_task(ds)
    (split,) = random_splits(task.users, seeds=[0])
    data = fit_data(task, split)
    no_new = CandidateConfig(n_copurchase=0, n_popular=0, n_neighbour=0)
    model = NbrRanker(replace(FAST, candidates=no_new, history_shifts=0))
    rows = model.prepare(data)
    nothing = replace(rows, y=np.zeros(0, np.int8), weight=np.zeros(0),
                      train=rows.train.take(np.zeros(len(rows.y), bool)))
    with pytest.raises(ValueError, match="too little history to train the ranker"):
        model.fit_trees(nothing)


def test_auto_shifts_only_for_small_populations() -> None:
    assert auto_shifts(10_000) == 0  # Ta-Feng's ~9,975 training users
    assert auto_shifts(981) == 8  # Complete Journey's
    assert auto_shifts(2_500) == 3
    assert auto_shifts(300) == 8  # capped
