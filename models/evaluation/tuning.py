"""Hyperparameter search on validation users, cached on disk.

Every method with hyperparameters — TIFU-KNN, UP-CF@r and the ranker — gets the same
treatment:

- a stated **search space** (``SEARCH_SPACES``) and the same **budget** of
  configurations per split (``search.SEARCH_BUDGET``), searched by the same code
  (:func:`models.evaluation.search.search`: the default first, random points, then a
  local walk around the best);
- test users' targets are never given to anything here. The **baselines** are fitted with
  no target at all (they read none) and scored on the split's **validation users and up
  to** ``TUNING_TRAIN_USERS`` **training users**: to a method that never reads a target,
  a training user's target is as unseen as a validation user's, and Complete Journey's
  109 validation users alone chose settings far from the best (see the constant). The
  **ranker** learns from the training users' targets, so it is trained on its training
  users, early-stopped on the validation users (as in evaluation) and scored on those
  only (their last basket and, with history shifts, earlier ones);
- the objective is the mean of Recall@10 and NDCG@10 on the scored users;
- **per split**: a split's validation users can be another split's test users, so
  settings chosen on split 0 and used on split 1 would have seen some of split 1's
  test targets. Each split is tuned on its own validation users instead.

Results are cached as JSON keyed by the data (a fingerprint of the filtered dataset),
the split's users, the method, its search space, budget and seed and a hash of the code
that computes the scores, so a rerun of the evaluation is fast and a code change
re-tunes.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import inspect
import json
import logging
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from models.evaluation import metrics as metrics_module
from models.evaluation import search as search_module
from models.evaluation.metrics import evaluate_recommendations
from models.evaluation.protocol import NbrTask, Split, mask_targets
from models.evaluation.search import SEARCH_BUDGET, SEARCH_SEED, best_trial, search
from models.features import nbr, nbr_neighbours, nbr_state, nbr_stats
from models.nbr import candidates, matrices, ranker, tifuknn, upcf
from models.nbr.base import FitData, NextBasketModel
from models.nbr.ranker import NbrRanker, RankerConfig, top_k_per_user
from models.nbr.tifuknn import TifuKnn, TifuParams
from models.nbr.topfreq import fill_with_global
from models.nbr.upcf import UpCf, UpcfParams

logger = logging.getLogger(__name__)

# The cut-off of the tuning objective (mean of Recall@K and NDCG@K on the scored users).
TUNING_K = 10
# Training users a baseline is scored on, beside the validation users, when tuned. On
# Complete Journey (109 validation users a split) the search's choice scored .1535 / .1445
# Recall@10 / NDCG@10 on test with validation users alone and .1639 / .1563 with 1,500
# training users added (mean of 5 splits, 156 configurations each; the best of them on
# test: .1648 / .1554). Capped to bound the tuning time on large datasets.
TUNING_TRAIN_USERS = 2_000

# The grids, wider than the papers': TIFU-KNN over every parameter (k up to more than
# a Ta-Feng pool of ~11,000 users, i.e. every pool user, since a first search chose
# 5,000, the old edge; alpha 0 = neighbours only to 1 = own vector only, one group = no
# group decay); UP-CF@r over the paper's grid made finer, plus a neighbour cut (None = all
# users, the paper's sum); the ranker over tree size, leaf size, learning rate and L2.
# Lists are ordered: the local walk steps to adjacent entries.
SEARCH_SPACES: dict[str, dict[str, list[Any]]] = {
    "tifu-knn": {
        "n_neighbors": [50, 100, 300, 500, 900, 1300, 2000, 3000, 5000, 8000, 12000],
        "within_decay": [0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0],
        "group_decay": [0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0],
        "alpha": [0.0, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0],
        "n_groups": [1, 2, 3, 5, 7, 9, 11, 15, 20],
    },
    "up-cf": {
        "recency": [1, 2, 3, 5, 7, 10, 15, 25, 50, 100, None],
        "alpha": [0.0, 0.1, 0.25, 0.4, 0.5, 0.6, 0.75, 0.9, 1.0],
        "q": [1.0, 2.0, 3.0, 5.0, 7.0, 10.0, 25.0, 50.0, 100.0, 1000.0],
        "n_neighbors": [10, 30, 100, 300, 1000, None],
    },
    "ranker": {
        "max_leaf_nodes": [15, 31, 63, 127],
        "min_samples_leaf": [20, 50, 100, 200, 500],
        "learning_rate": [0.05, 0.1, 0.2],
        "l2_regularization": [0.0, 1.0, 10.0],
    },
}
DEFAULTS: dict[str, dict[str, Any]] = {
    "tifu-knn": dataclasses.asdict(TifuParams()),
    "up-cf": dataclasses.asdict(UpcfParams()),
}
BUILDERS: dict[str, Callable[[dict[str, Any]], NextBasketModel]] = {
    "tifu-knn": lambda p: TifuKnn(TifuParams(**p)),
    "up-cf": lambda p: UpCf(UpcfParams(**p)),
}
# Modules whose source decides the tuning scores: their hash is part of the cache key.
CODE_MODULES = (metrics_module, search_module, matrices, tifuknn, upcf)
RANKER_CODE_MODULES = (*CODE_MODULES, ranker, candidates, nbr, nbr_neighbours, nbr_state,
                       nbr_stats)


def tuning_view(task: NbrTask, split: Split) -> tuple[FitData, np.ndarray]:
    """What a baseline's tuning may use: no target, and the users it is scored on.

    The model is fitted as in evaluation (pool = training + validation users) with every
    target hidden; it is scored on the validation users and a seeded sample of at most
    ``TUNING_TRAIN_USERS`` training users (never a test user).
    """
    data = FitData(task=task, train_users=split.train, val_users=split.val,
                   targets=mask_targets(task.targets, np.zeros(0, np.int64)))
    rng = np.random.default_rng(SEARCH_SEED)
    train = rng.choice(split.train, size=min(TUNING_TRAIN_USERS, len(split.train)),
                       replace=False)
    return data, np.sort(np.concatenate([split.val, train]))


def objective(recs: np.ndarray, task: NbrTask, users: np.ndarray) -> dict[str, float]:
    """Recall@10, NDCG@10 and their mean on the given (never test) users."""
    return scores_at_k(recs, task.targets[users], task.history_counts[users])


def scores_at_k(recs: np.ndarray, truth: sp.csr_matrix, seen: sp.csr_matrix
                ) -> dict[str, float]:
    """Recall@10, NDCG@10 and their mean over the rows (one basket to predict each)."""
    m = evaluate_recommendations(recs, truth, seen, (TUNING_K,))
    r, n = m[f"recall@{TUNING_K}"], m[f"ndcg@{TUNING_K}"]
    return {"recall@10": r, "ndcg@10": n, "score": 0.5 * (r + n)}


def dataset_fingerprint(task: NbrTask) -> str:
    """Hash of the filtered data's user / basket / item codes and sizes."""
    ds = task.dataset
    h = hashlib.sha256()
    for arr in (ds.user, ds.basket, ds.item):
        h.update(np.ascontiguousarray(arr).tobytes())
    h.update(f"{ds.n_users}/{ds.n_items}".encode())
    return h.hexdigest()[:16]


@functools.cache
def _source_digest(module_name: str) -> str:
    """SHA-256 of a module's source as first read in this process.

    Read once: an evaluation runs for up to an hour, and its results must be keyed by the
    code it runs, not by an edit saved on disk meanwhile (``inspect.getsource`` rereads a
    changed file).
    """
    return hashlib.sha256(inspect.getsource(sys.modules[module_name]).encode()).hexdigest()


def code_version(modules: Sequence[Any] = CODE_MODULES) -> str:
    """Hash of the source of the modules that compute tuning scores."""
    h = hashlib.sha256()
    for mod in (*modules, sys.modules[__name__]):
        h.update(_source_digest(mod.__name__).encode())
    return h.hexdigest()[:16]


# Every module's source is read when this one is imported, at the start of an evaluation.
for _module in RANKER_CODE_MODULES:
    _source_digest(_module.__name__)
_source_digest(__name__)


@dataclass
class TuningCache:
    """JSON files under ``directory`` (None = no cache)."""

    directory: Path | None

    def key(self, **parts: Any) -> str:
        blob = json.dumps(parts, sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:24]

    def get(self, key: str) -> dict[str, Any] | None:
        if self.directory is None:
            return None
        path = self.directory / f"{key}.json"
        return json.loads(path.read_text()) if path.exists() else None

    def put(self, key: str, value: dict[str, Any]) -> None:
        if self.directory is None:
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        (self.directory / f"{key}.json").write_text(json.dumps(value, indent=1))


def split_key(task: NbrTask, split: Split) -> dict[str, str]:
    h = hashlib.sha256()
    for part in (split.train, split.val):
        h.update(np.asarray(part, dtype=np.int64).tobytes())
    return {"data": dataset_fingerprint(task), "split": f"{split.seed}:{h.hexdigest()[:16]}"}


def _record(method: str, split: Split, trials: list[dict[str, Any]], seconds: float,
            budget: int) -> dict[str, Any]:
    best = best_trial(trials)  # first of equals: the default wins ties
    record = {
        "method": method, "split": split.seed, "best": best["params"],
        "best_val": {k: best[k] for k in ("recall@10", "ndcg@10", "score")},
        "trials": trials, "seconds": seconds, "budget": budget,
    }
    logger.info("tuned %s on split %d (%d configs, %.1fs): %s val R@10 %.4f N@10 %.4f",
                method, split.seed, len(trials), seconds, best["params"],
                best["recall@10"], best["ndcg@10"])
    return record


def tune_baseline(
    method: str, task: NbrTask, split: Split, budget: int = SEARCH_BUDGET,
    cache: TuningCache | None = None,
) -> dict[str, Any]:
    """Search ``method``'s space on the split's :func:`tuning_view`; returns the record.

    The record holds ``best`` (the parameters), ``trials`` (parameters, validation
    scores and search stage of every configuration), ``seconds`` and ``cached``.
    """
    cache = cache or TuningCache(None)
    space, default = SEARCH_SPACES[method], DEFAULTS[method]
    key = cache.key(method=method, space=space, budget=budget, seed=SEARCH_SEED,
                    code=code_version(), **split_key(task, split))
    hit = cache.get(key)
    if hit is not None:
        return {**hit, "cached": True}
    start = time.perf_counter()
    data, scored = tuning_view(task, split)

    def score(params: dict[str, Any]) -> dict[str, float]:
        model = BUILDERS[method](params)
        model.fit(data)
        return objective(model.recommend(scored, TUNING_K), task, scored)

    trials = search(score, space, default, budget)
    record = _record(method, split, trials, time.perf_counter() - start, budget)
    cache.put(key, record)
    return {**record, "cached": False}


def tune_ranker(
    task: NbrTask, split: Split, base: Any = None, budget: int = SEARCH_BUDGET,
    cache: TuningCache | None = None, space: dict[str, list[Any]] | None = None,
) -> dict[str, Any]:
    """Search the ranker's tree settings on one split's training / validation users.

    Rows are built once (training users' targets as labels; validation users' targets
    for early stopping, as in evaluation), then each setting is fitted and scored on
    the validation examples: each validation user's last basket and, with history
    shifts, their earlier ones. Test users' targets are masked out.
    """
    cache = cache or TuningCache(None)
    base = base or RankerConfig()
    space = space or SEARCH_SPACES["ranker"]
    key = cache.key(method="ranker", space=space, budget=budget, seed=SEARCH_SEED,
                    base=dataclasses.asdict(base),
                    code=code_version(RANKER_CODE_MODULES),
                    **split_key(task, split))
    hit = cache.get(key)
    if hit is not None:
        return {**hit, "cached": True}
    start = time.perf_counter()
    allowed = np.concatenate([split.train, split.val])
    data = FitData(task=task, train_users=split.train, val_users=split.val,
                   targets=mask_targets(task.targets, allowed))
    model = NbrRanker(base)
    rows = model.prepare(data)

    val = rows.val

    def score(params: dict[str, Any]) -> dict[str, float]:
        model.fit_trees(rows, dataclasses.replace(base, **params))
        recs = top_k_per_user(np.arange(val.n_examples), val.rows,
                              model.score_rows(val.rows), TUNING_K)
        recs = fill_with_global(recs, model.stats.popular_items(2 * TUNING_K))
        return {"trees": int(model.model.n_iter_), **scores_at_k(recs, val.truth, val.seen)}

    default = {name: getattr(base, name) for name in space}
    trials = search(score, space, default, budget)
    record = _record("ranker", split, trials, time.perf_counter() - start, budget)
    cache.put(key, record)
    return {**record, "cached": False}
