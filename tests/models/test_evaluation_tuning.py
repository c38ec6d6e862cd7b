"""Tuning: stated budget, validation users only (never test users), cached reruns."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from models.datasets.synthetic import generate_baskets
from models.evaluation import search, tuning
from models.evaluation.protocol import NbrTask, Split, filter_dataset, make_task, random_splits
from models.nbr.base import FitData
from models.nbr.candidates import CandidateConfig
from models.nbr.ranker import RankerConfig

FAST_RANKER = RankerConfig(
    candidates=CandidateConfig(n_copurchase=10, n_popular=5), max_iter=20,
    min_samples_leaf=20, negative_sample_rate=1.0, history_shifts=0,
)


@pytest.fixture(scope="module")
def task_split() -> tuple[NbrTask, Split]:
    task = make_task(filter_dataset(generate_baskets(n_users=120, n_items=50, seed=3)))
    (split,) = random_splits(task.users, seeds=[0])
    return task, split


def with_test_targets_scrambled(task: NbrTask, split: Split) -> NbrTask:
    """The same task, but every test user's target is the whole catalogue."""
    targets = task.targets.tolil()
    for u in split.test:
        targets[int(u), :] = 1.0
    return NbrTask(task.dataset, task.history, task.history_baskets, task.history_counts,
                   targets.tocsr(), task.target_ts, task.users)


def test_candidate_configs_default_first_distinct_and_seeded() -> None:
    space = tuning.SEARCH_SPACES["up-cf"]
    configs = search.candidate_configs(space, tuning.DEFAULTS["up-cf"], 10)
    assert len(configs) == 10
    assert configs[0] == tuning.DEFAULTS["up-cf"]
    assert len({tuple(sorted(c.items(), key=str)) for c in configs}) == 10
    assert configs == search.candidate_configs(space, tuning.DEFAULTS["up-cf"], 10)
    for c in configs:
        assert all(c[k] in space[k] for k in space)


@pytest.mark.parametrize("method", ["tifu-knn", "up-cf"])
def test_every_default_is_a_point_of_its_space(method: str) -> None:
    space, default = tuning.SEARCH_SPACES[method], tuning.DEFAULTS[method]
    assert set(space) == set(default) and all(default[k] in space[k] for k in space)
    ranker = tuning.SEARCH_SPACES["ranker"]
    assert all(getattr(RankerConfig(), k) in ranker[k] for k in ranker)


def test_search_spends_the_budget_and_walks_to_the_optimum() -> None:
    space = {"a": list(range(10)), "b": list(range(10))}
    calls: list[dict] = []

    def score(p: dict) -> dict[str, float]:  # single peak at (7, 2)
        calls.append(p)
        return {"score": -abs(p["a"] - 7) - abs(p["b"] - 2)}

    trials = search.search(score, space, {"a": 0, "b": 9}, budget=30, seed=1)
    assert len(trials) == len(calls) == 30 and trials[0]["params"] == {"a": 0, "b": 9}
    assert len({(t["params"]["a"], t["params"]["b"]) for t in trials}) == 30
    assert search.best_trial(trials)["params"] == {"a": 7, "b": 2}
    assert {t["stage"] for t in trials} == {"random", "local"}
    # A grid smaller than the budget: every point once, then stop.
    assert len(search.search(score, {"a": [0, 1], "b": [5]}, {"a": 0, "b": 5}, 9)) == 2


@pytest.mark.parametrize("method", ["tifu-knn", "up-cf"])
def test_baseline_tuning_sees_no_target_and_scores_no_test_user(
    task_split, monkeypatch: pytest.MonkeyPatch, method: str
) -> None:
    task, split = task_split
    seen: list[tuple[FitData, np.ndarray]] = []
    real = tuning.BUILDERS[method]

    class Spy:
        def __init__(self, params):
            self.inner = real(params)
            self.name = self.inner.name

        def fit(self, data: FitData) -> None:
            self.data = data
            self.inner.fit(data)

        def recommend(self, users, k):
            seen.append((self.data, np.asarray(users)))
            return self.inner.recommend(users, k)

    monkeypatch.setitem(tuning.BUILDERS, method, Spy)
    record = tuning.tune_baseline(method, task, split, budget=3)
    assert len(seen) == 3 and len(record["trials"]) == 3
    for data, users in seen:
        # Scored on every validation user and on training users, never on a test user.
        assert set(split.val) <= set(users) and set(users) <= set(split.val) | set(split.train)
        assert set(users) & set(split.train)
        assert data.targets.nnz == 0  # the baselines read no target: they are given none


@pytest.mark.parametrize("method", ["tifu-knn", "up-cf"])
def test_tuning_result_does_not_depend_on_test_targets(task_split, method: str) -> None:
    task, split = task_split
    a = tuning.tune_baseline(method, task, split, budget=4)
    b = tuning.tune_baseline(method, with_test_targets_scrambled(task, split), split, budget=4)
    assert a["trials"] == b["trials"] and a["best"] == b["best"]


def test_ranker_tuning_does_not_depend_on_test_targets(task_split) -> None:
    task, split = task_split
    space = {"max_leaf_nodes": [15, 31], "min_samples_leaf": [10, 20]}
    a = tuning.tune_ranker(task, split, FAST_RANKER, budget=3, space=space)
    b = tuning.tune_ranker(with_test_targets_scrambled(task, split), split, FAST_RANKER,
                           budget=3, space=space)
    assert a["trials"][0]["params"] == {"max_leaf_nodes": 31, "min_samples_leaf": 20}
    assert len(a["trials"]) == 3 and a["trials"] == b["trials"]
    assert a["best"] in [t["params"] for t in a["trials"]]


def test_cache_hit_on_rerun_and_miss_on_another_budget(task_split, tmp_path: Path) -> None:
    task, split = task_split
    cache = tuning.TuningCache(tmp_path)
    first = tuning.tune_baseline("tifu-knn", task, split, budget=2, cache=cache)
    again = tuning.tune_baseline("tifu-knn", task, split, budget=2, cache=cache)
    other = tuning.tune_baseline("tifu-knn", task, split, budget=3, cache=cache)
    assert (first["cached"], again["cached"], other["cached"]) == (False, True, False)
    assert again["best"] == first["best"] and again["trials"] == first["trials"]
    assert len(list(tmp_path.glob("*.json"))) == 2


def test_code_version_keeps_the_code_the_run_started_with(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """An evaluation runs for an hour: a module edited on disk meanwhile must not re-key
    the results it stores (they come from the code it loaded)."""
    source = tmp_path / "tuned_module_under_edit.py"
    source.write_text("def score():\n    return 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import tuned_module_under_edit as module

    before = tuning.code_version((module,))
    source.write_text("def score():\n    return 2  # edited while an evaluation runs\n")
    assert tuning.code_version((module,)) == before
