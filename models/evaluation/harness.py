"""Run every recommender over the protocol's splits and average the metrics."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from models.evaluation.metrics import DEFAULT_KS, evaluate_recommendations, per_user_metrics
from models.evaluation.protocol import NbrTask, Split, mask_targets
from models.nbr.base import FitData, NextBasketModel

logger = logging.getLogger(__name__)

# A factory gets the split, so a tuned method can use that split's hyperparameters.
ModelFactory = Callable[[Split], NextBasketModel]
# The cut-off whose per-user Recall / NDCG are kept for the paired bootstrap.
PER_USER_K = 10


@dataclass
class MethodResult:
    """Metrics of one method: per split and their mean."""

    name: str
    per_split: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0
    # Per split: test user codes and their recall@10 / ndcg@10 (NaN for an empty target).
    per_user: list[dict[str, np.ndarray]] = field(default_factory=list)

    @property
    def mean(self) -> dict[str, float]:
        keys = self.per_split[0].keys() if self.per_split else []
        return {k: float(np.mean([s[k] for s in self.per_split])) for k in keys}


def fit_data(task: NbrTask, split: Split) -> FitData:
    """What a model may see for one split (targets of train and val users only)."""
    allowed = np.concatenate([split.train, split.val])
    return FitData(
        task=task,
        train_users=split.train,
        val_users=split.val,
        targets=mask_targets(task.targets, allowed),
    )


def evaluate_model(
    model: NextBasketModel, task: NbrTask, users: np.ndarray, ks: Sequence[int] = DEFAULT_KS
) -> dict[str, float]:
    """Metrics of an already fitted model on the given users."""
    return evaluate_with_per_user(model, task, users, ks)[0]


def evaluate_with_per_user(
    model: NextBasketModel, task: NbrTask, users: np.ndarray, ks: Sequence[int] = DEFAULT_KS
) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """Mean metrics, and each user's recall / ndcg at ``PER_USER_K`` (for the bootstrap)."""
    recs = model.recommend(users, max(max(ks), PER_USER_K))
    means = evaluate_recommendations(
        recs, task.targets[users], task.history_counts[users], tuple(ks)
    )
    m = per_user_metrics(recs, task.targets[users], PER_USER_K)
    per_user = {
        "users": np.asarray(users),
        f"recall@{PER_USER_K}": m["recall"],
        f"ndcg@{PER_USER_K}": m["ndcg"],
    }
    return means, per_user


def run_methods(
    task: NbrTask,
    splits: Sequence[Split],
    factories: Sequence[ModelFactory],
    ks: Sequence[int] = DEFAULT_KS,
) -> list[MethodResult]:
    """Fit and evaluate each method on each split's test users."""
    results: list[MethodResult] = []
    for factory in factories:
        result: MethodResult | None = None
        for split in splits:
            model = factory(split)
            if result is None:
                result = MethodResult(name=model.name)
            start = time.perf_counter()
            model.fit(fit_data(task, split))
            metrics, per_user = evaluate_with_per_user(model, task, split.test, ks)
            result.seconds += time.perf_counter() - start
            result.per_split.append(metrics)
            result.per_user.append(per_user)
            logger.info(
                "%s split %d: R@10 %.4f N@10 %.4f (%.1fs)",
                model.name, split.seed, metrics.get("recall@10", float("nan")),
                metrics.get("ndcg@10", float("nan")), time.perf_counter() - start,
            )
        if result is not None:
            results.append(result)
    return results
