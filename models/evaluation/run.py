"""The ``evaluate`` subcommand: every method, the protocol's five splits, one table.

    python -m models evaluate --dataset tafeng --json tafeng.json
    python -m models evaluate --dataset completejourney
    python -m models evaluate --dataset csv:/path/baskets.csv

``--dataset`` is ``completejourney``, ``tafeng`` or ``tafeng:DIR`` (default DIR is the
``shared/data/tafeng`` beside the checkout), or ``csv:PATH`` (see
:mod:`models.datasets.csv` for the columns).

Every method with hyperparameters (TIFU-KNN, UP-CF@r, the ranker) is tuned per split on
that split's non-test users first (validation users; the baselines, which read no target,
also training users), with the same budget (``--budget``) and search
(:mod:`models.evaluation.tuning`, cached under ``--tuning-cache``). The report ends
with a user-clustered paired bootstrap of the ranker against the best baseline
(:mod:`models.evaluation.bootstrap`).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from models.datasets import BasketDataset, load_completejourney, load_csv, load_tafeng
from models.datasets.tafeng import load_tafeng_keysets
from models.evaluation import tuning
from models.evaluation.bootstrap import N_RESAMPLES, paired_bootstrap
from models.evaluation.harness import PER_USER_K, MethodResult, ModelFactory, run_methods
from models.evaluation.metrics import DEFAULT_KS
from models.evaluation.protocol import (
    COMPLETEJOURNEY_MIN_ITEM_COUNT,
    SPLIT_SEEDS,
    NbrTask,
    Split,
    filter_dataset,
    keyset_splits,
    make_task,
    random_splits,
)
from models.evaluation.report import format_comparison, format_per_split, format_table
from models.evaluation.search import SEARCH_BUDGET
from models.nbr.base import NextBasketModel
from models.nbr.ranker import NbrRanker, RankerConfig
from models.nbr.tifuknn import TifuKnn, TifuParams
from models.nbr.topfreq import GPTopFreq, GTopFreq, PTopFreq
from models.nbr.upcf import UpCf, UpcfParams

logger = logging.getLogger(__name__)

# Method keys of --methods, in table order. "tifu-knn" and "up-cf" are tuned per split;
# "tifu-knn-published" keeps the authors' Ta-Feng setting for reference.
METHODS = (
    "g-topfreq", "p-topfreq", "gp-topfreq", "tifu-knn-published", "tifu-knn", "up-cf",
    "ranker", "ranker-no-time",
)
TUNED_BASELINES = ("tifu-knn", "up-cf")
RANKERS = ("ranker", "ranker-no-time")
DEFAULT_CACHE = Path("build/nbr-tuning")
COMPARED_METRICS = (f"recall@{PER_USER_K}", f"ndcg@{PER_USER_K}")


class DatasetSpecError(ValueError):
    """``--dataset`` names no known source."""


def load_for_evaluation(spec: str) -> tuple[BasketDataset, list[Split] | None, int | None]:
    """(dataset, shipped splits or None, item-count filter) for a ``--dataset`` value."""
    kind, _, arg = spec.partition(":")
    if kind == "completejourney" and not arg:
        return load_completejourney(), None, COMPLETEJOURNEY_MIN_ITEM_COUNT
    if kind == "tafeng":
        directory = Path(arg) if arg else None
        ds = load_tafeng(directory)
        return ds, load_tafeng_keysets(directory), None  # type: ignore[return-value]
    if kind == "csv" and arg:
        return load_csv(arg), None, None
    raise DatasetSpecError(
        f"unknown --dataset {spec!r}: use completejourney, tafeng[:DIR] or csv:PATH"
    )


def load_task(spec: str) -> tuple[BasketDataset, NbrTask, list[Split], int | None, bool]:
    """(filtered dataset, task, the five splits, item-count filter, shipped keysets?)."""
    raw, keysets, min_item_count = load_for_evaluation(spec)
    ds = filter_dataset(raw, min_item_count)
    task = make_task(ds)
    if keysets is not None:
        splits = keyset_splits(ds, task.users, keysets)  # type: ignore[arg-type]
    else:
        splits = random_splits(task.users, SPLIT_SEEDS)
    return ds, task, splits, min_item_count, keysets is not None


def _tuned_factory(
    method: str, task: NbrTask, splits: Sequence[Split], budget: int,
    cache: tuning.TuningCache, tuning_report: dict[str, object],
) -> ModelFactory:
    """Tune ``method`` on every split (or read the cache); the factory uses each split's."""
    records = {s.seed: tuning.tune_baseline(method, task, s, budget, cache) for s in splits}
    tuning_report[method] = {
        "search_space": tuning.SEARCH_SPACES[method],
        "budget": budget,
        "objective": ("mean of Recall@10 and NDCG@10 on the split's validation users and"
                      f" up to {tuning.TUNING_TRAIN_USERS} of its training users (fitted"
                      " with no target)"),
        "per_split": [
            {k: records[s.seed][k] for k in ("split", "best", "best_val", "seconds", "cached",
                                              "trials")}
            for s in splits
        ],
    }
    def factory(split: Split) -> NextBasketModel:
        best = records[split.seed]["best"]
        model: TifuKnn | UpCf
        if method == "tifu-knn":
            model = TifuKnn(TifuParams(**best))
            model.name = "TIFU-KNN (tuned)"
        else:
            model = UpCf(UpcfParams(**best))
            model.name = "UP-CF@r (tuned)"
        return model

    return factory


def build_factories(
    methods: Sequence[str], task: NbrTask, splits: Sequence[Split], budget: int,
    cache: tuning.TuningCache, tuning_report: dict[str, object],
    ranker_base: RankerConfig | None = None,
) -> list[ModelFactory]:
    """One factory per method key; tuning (or its cache) runs here. ``ranker_base``: the
    ranker's settings that are not searched (default ``RankerConfig()``)."""
    ranker_base = ranker_base or RankerConfig()
    ranker_records: dict[int, dict[str, object]] | None = None
    factories: list[ModelFactory] = []
    for m in methods:
        if m == "g-topfreq":
            factories.append(lambda split: GTopFreq())
        elif m == "p-topfreq":
            factories.append(lambda split: PTopFreq())
        elif m == "gp-topfreq":
            factories.append(lambda split: GPTopFreq())
        elif m == "tifu-knn-published":
            factories.append(_published_tifu)
        elif m in TUNED_BASELINES:
            factories.append(_tuned_factory(m, task, splits, budget, cache, tuning_report))
        elif m in RANKERS:
            if ranker_records is None:
                ranker_records = _tune_rankers(task, splits, budget, cache, tuning_report,
                                               ranker_base)
            factories.append(_ranker_factory(ranker_records, ranker_base,
                                             use_visit_time=m == "ranker"))
    return factories


def _tune_rankers(
    task: NbrTask, splits: Sequence[Split], budget: int, cache: tuning.TuningCache,
    tuning_report: dict[str, object], base: RankerConfig,
) -> dict[int, dict[str, object]]:
    """Tune the ranker on every split's own training / validation users (or read the cache)."""
    records = {s.seed: tuning.tune_ranker(task, s, base, budget=budget, cache=cache)
               for s in splits}
    tuning_report["ranker"] = {
        "search_space": tuning.SEARCH_SPACES["ranker"],
        "history_shifts": "automatic" if base.history_shifts is None else base.history_shifts,
        "basket_weights": base.basket_weights,
        "budget": budget,
        "objective": ("mean of Recall@10 and NDCG@10 on the split's validation users' last "
                      "baskets and, with history shifts, their earlier ones"),
        "per_split": [
            {k: records[s.seed][k] for k in ("split", "best", "best_val", "seconds", "cached",
                                              "trials")}
            for s in splits
        ],
    }
    return records


def _ranker_factory(records: dict[int, dict[str, object]], base: RankerConfig,
                    use_visit_time: bool) -> ModelFactory:
    """The ranker with each split's tuned setting (the no-time variant reuses it)."""
    def factory(split: Split) -> NextBasketModel:
        best = records[split.seed]["best"]
        assert isinstance(best, dict)
        cfg = dataclasses.replace(base, **best, use_visit_time=use_visit_time)
        return NbrRanker(cfg)

    return factory


def _published_tifu(split: Split) -> TifuKnn:
    model = TifuKnn(TifuParams())
    model.name = "TIFU-KNN (published)"
    return model


def compare(results: Sequence[MethodResult], n_resamples: int = N_RESAMPLES) -> dict[str, object]:
    """Paired bootstrap of each ranker against the best baseline, per compared metric.

    The best baseline is picked per metric by its mean **test** figure — a choice that
    can only favour the baselines.
    """
    baselines = [r for r in results if not r.name.startswith("Ranker")]
    rankers = [r for r in results if r.name.startswith("Ranker")]
    out: dict[str, object] = {}
    if not baselines or not rankers:
        return out
    for metric in COMPARED_METRICS:
        best = max(baselines, key=lambda r: r.mean[metric])
        entry: dict[str, object] = {"best_baseline": best.name}
        for r in rankers:
            pairs = [_aligned(r, best, i, metric) for i in range(len(r.per_user))]
            entry[r.name] = paired_bootstrap(
                [p[0] for p in pairs], [p[1] for p in pairs], n_resamples=n_resamples,
                users_per_split=[r.per_user[i]["users"] for i in range(len(r.per_user))],
            )
        out[metric] = entry
    return out


def _aligned(a: MethodResult, b: MethodResult, i: int, metric: str) -> tuple:
    ua, ub = a.per_user[i], b.per_user[i]
    assert np.array_equal(ua["users"], ub["users"]), "methods scored on different users"
    return ua[metric], ub[metric]


def evaluate(
    spec: str, methods: Sequence[str], n_splits: int, budget: int = SEARCH_BUDGET,
    cache_dir: Path | None = DEFAULT_CACHE, n_resamples: int = N_RESAMPLES,
    ranker_base: RankerConfig | None = None,
) -> dict[str, object]:
    """Run the protocol for a dataset spec; returns the JSON-ready report."""
    start = time.perf_counter()
    ds, task, splits, min_item_count, keysets = load_task(spec)
    splits = splits[:n_splits]
    notes: list[str] = []
    if "ranker-no-time" in methods and not np.isfinite(task.target_ts).any():
        methods = [m for m in methods if m != "ranker-no-time"]
        notes.append("Ranker (no visit time) not run: the data has no timestamps, so the "
                     "ranker never sees a visit time and would give identical figures.")
    tuning_report: dict[str, object] = {}
    tune_start = time.perf_counter()
    factories = build_factories(methods, task, splits, budget,
                                tuning.TuningCache(cache_dir), tuning_report, ranker_base)
    tuning_seconds = time.perf_counter() - tune_start
    results = run_methods(task, splits, factories, DEFAULT_KS)
    return {
        "dataset": spec,
        "summary": ds.summary(),
        "protocol": {
            "target": "last basket",
            "baskets_per_user": [3, 50],
            "min_item_count": min_item_count,
            "splits": [
                {"seed": s.seed, "train": len(s.train), "val": len(s.val), "test": len(s.test)}
                for s in splits
            ],
            "split_source": "shipped keysets" if keysets else "seeds 0..4, 72/8/20",
        },
        "methods": {
            r.name: {"mean": r.mean, "per_split": r.per_split, "seconds": r.seconds}
            for r in results
        },
        "tuning": {**tuning_report, "seconds": tuning_seconds,
                   "cache": str(cache_dir) if cache_dir else None},
        "comparison": compare(results, n_resamples),
        "notes": notes,
        "seconds": time.perf_counter() - start,
    }


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``python -m models evaluate``."""
    parser.add_argument(
        "--dataset", required=True,
        help="completejourney | tafeng[:DIR] | csv:PATH",
    )
    parser.add_argument("--json", type=Path, default=None, help="write all metrics here")
    parser.add_argument(
        "--budget", type=int, default=SEARCH_BUDGET,
        help="configurations tried per split by every tuned method, the ranker included "
             "(default %(default)s)",
    )
    parser.add_argument(
        "--tuning-cache", type=Path, default=DEFAULT_CACHE,
        help="directory of cached tuning results (default %(default)s)",
    )
    parser.add_argument(
        "--no-tuning-cache", action="store_true", help="tune again, write no cache",
    )
    parser.add_argument(
        "--resamples", type=int, default=N_RESAMPLES,
        help="bootstrap resamples over test users (default %(default)s)",
    )
    parser.add_argument(
        "--methods", default=",".join(METHODS),
        help=f"comma-separated subset of {', '.join(METHODS)} (default: all)",
    )
    parser.add_argument(
        "--splits", type=int, default=len(SPLIT_SEEDS),
        help="evaluate only the first N of the five splits (quick runs)",
    )
    parser.add_argument(
        "--history-shifts", type=int, default=None, metavar="N",
        help="the ranker's extra training examples, N baskets back (default: automatic; "
             "the JSON's tuning.ranker.per_split[].best_val holds its validation score)",
    )
    parser.add_argument(
        "--unweighted-ranker", action="store_true",
        help="train the ranker with every row weighing 1 and no example dropped (its "
             "training before every basket was weighed once; for comparison)",
    )


def main(args: argparse.Namespace) -> int:
    """Run the evaluation; print the table; write JSON if asked. Returns the exit code."""
    methods = [m.strip().lower() for m in args.methods.split(",") if m.strip()]
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        logger.error("unknown method(s) %s; known: %s", unknown, ", ".join(METHODS))
        return 2
    try:
        report = evaluate(
            args.dataset, methods, args.splits, budget=args.budget,
            cache_dir=None if args.no_tuning_cache else args.tuning_cache,
            n_resamples=args.resamples,
            ranker_base=RankerConfig(history_shifts=args.history_shifts,
                                     basket_weights=not args.unweighted_ranker),
        )
    except (DatasetSpecError, FileNotFoundError) as exc:
        logger.error("%s", exc)
        return 2
    methods_report = report["methods"]
    assert isinstance(methods_report, dict)
    n = len(report["protocol"]["splits"])  # type: ignore[index]
    print(f"{args.dataset}: mean over {n} split(s), test users")
    print(format_table(methods_report))
    print(format_per_split(methods_report))
    print(format_comparison(report["comparison"]))  # type: ignore[arg-type]
    for note in report["notes"]:  # type: ignore[attr-defined]
        print(note)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2))
        logger.info("wrote %s", args.json)
    return 0
