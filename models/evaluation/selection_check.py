"""How good is a baseline's tuned setting? Which users it is chosen on, checked on test.

    python -m models.evaluation.selection_check --dataset completejourney --configs 150

For every split, the same seeded sample of a baseline's grid (its default first, as in
the search) is fitted once per configuration and scored on three sets of users:

- the split's **validation users** alone (how baselines were tuned up to session 11);
- the **tuning view** (:func:`models.evaluation.tuning.tuning_view`: the validation users
  and up to ``TUNING_TRAIN_USERS`` training users; the baselines read no target);
- the split's **test users**, to see what each choice is worth.

It reports, as a mean over the splits, the test Recall@10 / NDCG@10 of the setting each
set of users picks, and of the best setting on test (a ceiling no tuning can claim).
This is an analysis of the tuning, not a tuning: nothing here feeds a choice back into
``evaluate``, which never looks at test users. Complete Journey, 150 configurations: 39
minutes on the 2-core machine (beside other runs).
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from models.evaluation import tuning
from models.evaluation.protocol import NbrTask, Split
from models.evaluation.run import load_task
from models.evaluation.search import candidate_configs

logger = logging.getLogger(__name__)

# Another seed than the search's, so the sample is not the search's own random stage.
SAMPLE_SEED = 123
CHOOSERS = ("validation users", "tuning view", "best on test")


def split_trials(method: str, task: NbrTask, split: Split, configs: list[dict[str, Any]]
                 ) -> list[dict[str, Any]]:
    """Each configuration's objective on the three sets of users of one split."""
    data, view = tuning.tuning_view(task, split)
    users = np.concatenate([view, split.test])
    in_view = {int(u): i for i, u in enumerate(view)}
    val_rows = np.array([in_view[int(u)] for u in split.val])
    trials = []
    for params in configs:
        model = tuning.BUILDERS[method](params)
        model.fit(data)
        recs = model.recommend(users, tuning.TUNING_K)
        view_recs, test_recs = recs[: len(view)], recs[len(view):]
        trials.append({
            "params": params,
            "validation users": tuning.objective(view_recs[val_rows], task, split.val),
            "tuning view": tuning.objective(view_recs, task, view),
            "test": tuning.objective(test_recs, task, split.test),
        })
    return trials


def chosen(trials: list[dict[str, Any]], chooser: str) -> dict[str, Any]:
    """The trial a set of users picks (the earliest of equals, as the search does)."""
    by = "test" if chooser == "best on test" else chooser
    return max(trials, key=lambda t: t[by]["score"])


def check(spec: str, method: str, n_configs: int, n_splits: int = 5) -> dict[str, Any]:
    start = time.perf_counter()
    _ds, task, splits, _min_count, _keysets = load_task(spec)
    configs = candidate_configs(tuning.SEARCH_SPACES[method], tuning.DEFAULTS[method],
                                n_configs, SAMPLE_SEED)
    per_split = []
    for split in splits[:n_splits]:
        trials = split_trials(method, task, split, configs)
        picks = {chooser: chosen(trials, chooser) for chooser in CHOOSERS}
        per_split.append({chooser: {"params": pick["params"], **pick["test"]}
                          for chooser, pick in picks.items()})
        logger.info("split %d: %s", split.seed,
                    {c: round(per_split[-1][c]["recall@10"], 4) for c in CHOOSERS})
    mean = {chooser: {m: float(np.mean([s[chooser][m] for s in per_split]))
                      for m in ("recall@10", "ndcg@10")} for chooser in CHOOSERS}
    return {"dataset": spec, "method": method, "configs": len(configs),
            "tuning_train_users": tuning.TUNING_TRAIN_USERS, "test_of_choice": mean,
            "per_split": per_split, "seconds": time.perf_counter() - start}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", required=True, help="completejourney | tafeng[:DIR] | "
                        "csv:PATH")
    parser.add_argument("--method", default="tifu-knn", choices=sorted(tuning.BUILDERS))
    parser.add_argument("--configs", type=int, default=150,
                        help="configurations sampled from the grid (default 150)")
    parser.add_argument("--splits", type=int, default=5)
    parser.add_argument("--json", type=Path, help="write the report here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    report = check(args.dataset, args.method, args.configs, args.splits)
    print(f"{args.method} on {args.dataset}, {report['configs']} configurations a split: "
          "test Recall@10 / NDCG@10 of the setting chosen on")
    for chooser, m in report["test_of_choice"].items():
        print(f"  {chooser:17s} {m['recall@10']:.4f} / {m['ndcg@10']:.4f}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
