"""One set of models (a candidate's, or the champion's) scored on the held-out shoppers,
through the same serving code the edge runs: each shopper's state is replayed from their
history, then asked at the cutoff.

- Next basket: Recall@10 and NDCG@10 of the first basket after the cutoff, as the
  evaluation protocol computes them (binary gains, IDCG over all target items).
- Purchase timing: for every category the shopper bought before, the median prediction
  and the 80 % interval at the cutoff against the days to the next purchase, both capped
  at the held-out window (a purchase after it, or none, is "at least the window"). A
  capped label counts as covered when the interval reaches the window. Per shopper: the
  mean absolute error and the share of their categories covered.

Arrays are per held-out shopper, in the order given, so two models' scores are paired.
"""

from __future__ import annotations

import json
import math
import tempfile
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cloud_sync.retrain.holdout import HeldOutShopper
from models.features.nbr import ShopperState as NbrState
from models.features.segments import ShopperState as TripState
from models.features.timing import PairState, apply_basket
from models.nbr.serve import NbrServingModel
from models.runtime import inference_session
from models.timing.serving import MODEL_NAME as TIMING_MODEL
from models.timing.serving import TimingPredictor

K = 10  # the kiosk's list: what the gate compares
ModelFiles = dict[str, bytes]


@dataclass(frozen=True)
class Scores:
    """Per held-out shopper (NaN where a shopper has nothing to score); None: no model."""

    recall: np.ndarray | None
    ndcg: np.ndarray | None
    timing_abs_error: np.ndarray | None
    timing_covered: np.ndarray | None

    def summary(self) -> dict[str, float | None]:
        def mean(a: np.ndarray | None) -> float | None:
            return None if a is None or not np.isfinite(a).any() else float(np.nanmean(a))

        return {f"recall@{K}": mean(self.recall), f"ndcg@{K}": mean(self.ndcg),
                "timing_mae_days": mean(self.timing_abs_error),
                "timing_coverage_80": mean(self.timing_covered)}


def score(files: ModelFiles, shoppers: list[HeldOutShopper], cutoff_ts: float,
          window_days: float) -> Scores:
    recall = ndcg = error = covered = None
    ranker = _ranker(files)
    if ranker is not None:
        recall, ndcg = _next_basket(ranker, shoppers)
    if {f"{TIMING_MODEL}.onnx", f"{TIMING_MODEL}.json"} <= files.keys():
        error, covered = _timing(files, shoppers, cutoff_ts, window_days)
    return Scores(recall, ndcg, error, covered)


def _ranker(files: ModelFiles) -> NbrServingModel | None:
    """The next-basket model as the edge loads it; None when the files have none."""
    with tempfile.TemporaryDirectory() as tmp:
        for name, data in files.items():
            (Path(tmp) / name).write_bytes(data)
        try:
            return NbrServingModel.load(tmp)
        except FileNotFoundError:
            return None


def _next_basket(model: NbrServingModel, shoppers: list[HeldOutShopper]
                 ) -> tuple[np.ndarray, np.ndarray]:
    recall = np.full(len(shoppers), np.nan)
    ndcg = np.full(len(shoppers), np.nan)
    for n, shopper in enumerate(shoppers):
        state = NbrState()
        for basket in shopper.history:
            state.update(basket.items, basket.ts, categories=model.categories_of(basket.items))
        truth = set(shopper.target_items)
        recs = [item for item, _ in model.recommend(state, now=shopper.target_ts, k=K)]
        gains = [1.0 / math.log2(rank + 2) for rank, item in enumerate(recs) if item in truth]
        ideal = sum(1.0 / math.log2(rank + 2) for rank in range(len(truth)))
        recall[n] = len(gains) / len(truth)
        ndcg[n] = sum(gains) / ideal
    return recall, ndcg


def _timing(files: ModelFiles, shoppers: list[HeldOutShopper], cutoff_ts: float,
            window_days: float) -> tuple[np.ndarray, np.ndarray]:
    predictor = TimingPredictor(inference_session(files[f"{TIMING_MODEL}.onnx"]),
                                json.loads(files[f"{TIMING_MODEL}.json"]))
    error = np.full(len(shoppers), np.nan)
    covered = np.full(len(shoppers), np.nan)
    for n, shopper in enumerate(shoppers):
        if not shopper.category_days:
            continue
        trips = TripState()
        pairs: dict[str, PairState] = {}
        for basket in shopper.history:
            per_category: dict[str, float] = defaultdict(float)
            for category, quantity in zip(basket.categories or (), basket.quantities,
                                          strict=False):
                per_category[category] += quantity
            apply_basket(trips, pairs, basket.ts, basket.spend, per_category)
        names = sorted(shopper.category_days)
        predicted = predictor.predict([(pairs.get(c, PairState()), c) for c in names], trips,
                                      cutoff_ts)
        label = np.array([shopper.category_days[c] for c in names])
        mid = np.minimum([p.days_until for p in predicted], window_days)
        low = np.array([p.low_days for p in predicted])
        high = np.array([p.high_days for p in predicted])
        capped = label >= window_days
        inside = np.where(capped, high >= window_days, (low <= label) & (label <= high))
        error[n] = float(np.abs(mid - label).mean())
        covered[n] = float(inside.mean())
    return error, covered
