"""The ``evaluate`` subcommand: every method, the protocol's five splits, one table.

    python -m models evaluate --dataset tafeng --json tafeng.json
    python -m models evaluate --dataset completejourney
    python -m models evaluate --dataset csv:/path/baskets.csv

``--dataset`` is ``completejourney``, ``tafeng`` or ``tafeng:DIR`` (default DIR is the
``shared/data/tafeng`` beside the checkout), or ``csv:PATH`` (see
:mod:`models.datasets.csv` for the columns).
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from collections.abc import Sequence
from pathlib import Path

from models.datasets import BasketDataset, load_completejourney, load_csv, load_tafeng
from models.datasets.tafeng import load_tafeng_keysets
from models.evaluation.harness import MethodResult, ModelFactory, run_methods
from models.evaluation.metrics import DEFAULT_KS
from models.evaluation.protocol import (
    COMPLETEJOURNEY_MIN_ITEM_COUNT,
    SPLIT_SEEDS,
    Split,
    filter_dataset,
    keyset_splits,
    make_task,
    random_splits,
)
from models.nbr.ranker import NbrRanker
from models.nbr.tifuknn import TifuKnn
from models.nbr.topfreq import GPTopFreq, GTopFreq, PTopFreq

logger = logging.getLogger(__name__)

METHODS: dict[str, ModelFactory] = {
    "g-topfreq": GTopFreq,
    "p-topfreq": PTopFreq,
    "gp-topfreq": GPTopFreq,
    "tifu-knn": TifuKnn,
    "ranker": NbrRanker,
}
TABLE_COLUMNS = (
    "recall@10", "ndcg@10", "recall@20", "ndcg@20", "phr@10", "phr@20",
    "repeat_recall@10", "explore_recall@10",
)


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


def evaluate(spec: str, methods: Sequence[str], n_splits: int) -> dict[str, object]:
    """Run the protocol for a dataset spec; returns the JSON-ready report."""
    start = time.perf_counter()
    raw, keysets, min_item_count = load_for_evaluation(spec)
    ds = filter_dataset(raw, min_item_count)
    task = make_task(ds)
    if keysets is not None:
        splits = keyset_splits(ds, task.users, keysets)  # type: ignore[arg-type]
    else:
        splits = random_splits(task.users, SPLIT_SEEDS)
    splits = splits[:n_splits]
    results = run_methods(task, splits, [METHODS[m] for m in methods], DEFAULT_KS)
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
            "split_source": "shipped keysets" if keysets is not None else "seeds 0..4, 72/8/20",
        },
        "methods": {
            r.name: {"mean": r.mean, "per_split": r.per_split, "seconds": r.seconds}
            for r in results
        },
        "seconds": time.perf_counter() - start,
    }


def format_table(results: list[MethodResult] | dict[str, dict[str, object]]) -> str:
    """Markdown table of the mean metrics of each method."""
    rows = (
        {r.name: r.mean for r in results}
        if isinstance(results, list)
        else {name: r["mean"] for name, r in results.items()}
    )
    header = "| method | " + " | ".join(TABLE_COLUMNS) + " |"
    lines = [header, "|---" * (len(TABLE_COLUMNS) + 1) + "|"]
    for name, mean in rows.items():
        assert isinstance(mean, dict)
        lines.append(f"| {name} | " + " | ".join(f"{mean[c]:.4f}" for c in TABLE_COLUMNS) + " |")
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``python -m models evaluate``."""
    parser.add_argument(
        "--dataset", required=True,
        help="completejourney | tafeng[:DIR] | csv:PATH",
    )
    parser.add_argument("--json", type=Path, default=None, help="write all metrics here")
    parser.add_argument(
        "--methods", default=",".join(METHODS),
        help=f"comma-separated subset of {', '.join(METHODS)} (default: all)",
    )
    parser.add_argument(
        "--splits", type=int, default=len(SPLIT_SEEDS),
        help="evaluate only the first N of the five splits (quick runs)",
    )


def main(args: argparse.Namespace) -> int:
    """Run the evaluation; print the table; write JSON if asked. Returns the exit code."""
    methods = [m.strip().lower() for m in args.methods.split(",") if m.strip()]
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        logger.error("unknown method(s) %s; known: %s", unknown, ", ".join(METHODS))
        return 2
    try:
        report = evaluate(args.dataset, methods, args.splits)
    except (DatasetSpecError, FileNotFoundError) as exc:
        logger.error("%s", exc)
        return 2
    methods_report = report["methods"]
    assert isinstance(methods_report, dict)
    n = len(report["protocol"]["splits"])  # type: ignore[index]
    print(f"{args.dataset}: mean over {n} split(s), test users")
    print(format_table(methods_report))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2))
        logger.info("wrote %s", args.json)
    return 0
