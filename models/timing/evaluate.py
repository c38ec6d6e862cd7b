"""Purchase timing: time-based split, baselines, metrics, and the train-and-evaluate run.

Protocol (the same for every method):

- rows are purchase occasions of a (shopper, category) pair; the label is the number of
  days until the pair's next occasion, capped at ``horizon_days`` ("not within H days"
  counts as H), so only rows with at least H days of follow-up are used;
- rows are split by the time the prediction is made: the last ``test_days`` before the
  follow-up margin are the test period, the ``val_days`` before them validation
  (calibration of the median and interval only), everything earlier training. No test
  label is used for training, calibration or the category priors;
- baselines: the pair's median gap so far, the category's median label in the training
  period, and their 50/50 blend (the category median alone when the pair has no gap yet);
- metrics: MAE and median absolute error in days, the 80% interval's coverage and width.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from models.datasets.base import BasketDataset
from models.features.segments import SECONDS_PER_DAY
from models.features.timing import CategoryPrior, set_category_prior
from models.timing.data import TimingDataError, TimingRows, replay
from models.timing.model import TimingModel, TimingModelConfig
from models.timing.predict import gap_quantile

logger = logging.getLogger(__name__)

# A category needs this many training rows for its own median; fewer falls back to the
# overall median (a median of a handful of gaps is mostly noise).
MIN_CATEGORY_ROWS = 30
BLEND_WEIGHT = 0.5  # the baseline: a 50/50 blend of pair and category medians
GOAL_MAE_RATIO = 0.8  # the goal: model MAE <= 0.8 x the blend baseline
URGENCY_LEVELS = (0.1, 0.25, 0.5, 0.75, 0.9)
# Breakdown of the repeat rows by how many gaps the pair has shown (doubling widths).
HISTORY_BUCKETS: tuple[tuple[int, int | None], ...] = ((1, 2), (2, 4), (4, 8), (8, 16), (16, None))


@dataclass(frozen=True)
class TimingSplit:
    """Windows in days, counted back from the last timestamp of the data."""

    # A quarter: most regular categories repeat well within it, and a year of data still
    # leaves a long training period. Labels beyond it are capped (see module docstring).
    horizon_days: float = 90.0
    test_days: float = 60.0
    val_days: float = 60.0

    def masks(self, rows: TimingRows) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        _, usable = rows.labels(self.horizon_days)
        test_end = rows.end_t - self.horizon_days * SECONDS_PER_DAY
        test_start = test_end - self.test_days * SECONDS_PER_DAY
        val_start = test_start - self.val_days * SECONDS_PER_DAY
        train = usable & (rows.t < val_start)
        val = usable & (rows.t >= val_start) & (rows.t < test_start)
        test = usable & (rows.t >= test_start) & (rows.t <= test_end)
        return train, val, test


def category_priors(
    category: np.ndarray, labels: np.ndarray, n_categories: int, horizon: float
) -> tuple[np.ndarray, np.ndarray, CategoryPrior]:
    """Per category code: median label and share repeated within the horizon.

    Small categories get the overall values (a median of a handful of gaps is noise).
    Returns (medians, repeat shares, overall prior).
    """
    default = CategoryPrior(
        float(np.median(labels)) if len(labels) else float("nan"),
        float((labels < horizon).mean()) if len(labels) else float("nan"),
    )
    medians = np.full(n_categories, default.median_gap_days)
    shares = np.full(n_categories, default.repeat_share)
    order = np.argsort(category, kind="stable")
    cats, starts, counts = np.unique(category[order], return_index=True, return_counts=True)
    for c, s, n in zip(cats, starts, counts, strict=True):
        if n >= MIN_CATEGORY_ROWS:
            lab = labels[order[s : s + n]]
            medians[c] = float(np.median(lab))
            shares[c] = float((lab < horizon).mean())
    return medians, shares, default


def urgency_calibration(q: np.ndarray, y: np.ndarray, horizon: float) -> dict[str, float | None]:
    """For urgency levels p: the observed share of gaps <= the gap at which urgency is p.

    A calibrated urgency gives back p. Rows whose p-gap lies beyond the horizon are left
    out for that p (their capped label cannot tell).
    """
    out: dict[str, float | None] = {}
    for p in URGENCY_LEVELS:
        at = gap_quantile(q, np.full(len(q), p))
        known = at < horizon
        out[f"{p:.2f}"] = float((y[known] <= at[known]).mean()) if known.any() else None
    return out


def _errors(pred: np.ndarray, y: np.ndarray) -> dict[str, float]:
    err = np.abs(pred - y)
    return {"mae_days": float(err.mean()), "median_ae_days": float(np.median(err))}


def evaluate_rows(
    model: TimingModel, features: np.ndarray, rows: TimingRows, y: np.ndarray,
    cat_prior: np.ndarray, horizon: float,
) -> dict[str, dict[str, object]]:
    """Metrics of the model and the baselines on evaluation rows, per subset."""
    q = model.predict_quantiles(features)
    q = np.clip(np.sort(q, axis=1), 0.0, horizon)
    cat = np.minimum(cat_prior[rows.category], horizon)
    pair = np.minimum(rows.pair_median_gap, horizon)
    blend = np.where(np.isnan(pair), cat, BLEND_WEIGHT * pair + (1 - BLEND_WEIGHT) * cat)
    subsets = {
        "repeat (pair has >= 1 gap)": rows.n_gaps >= 1,
        "first repurchase (no gap yet)": rows.n_gaps == 0,
        "all": np.ones(len(y), dtype=bool),
    }
    # Pairs with a longer history, where the pair's own median is already informative.
    for lo, hi in HISTORY_BUCKETS:
        label = f"{lo}+" if hi is None else f"{lo}" if hi == lo + 1 else f"{lo}-{hi - 1}"
        subsets[f"pairs with {label} gap{'' if label == '1' else 's'}"] = (rows.n_gaps >= lo) & (
            rows.n_gaps < (hi if hi is not None else np.iinfo(np.int32).max)
        )
    out: dict[str, dict[str, object]] = {}
    for name, m in subsets.items():
        if not m.any():
            continue
        covered = (y[m] >= q[m, 0]) & (y[m] <= q[m, 2])
        methods: dict[str, dict[str, float]] = {
            "category median": _errors(cat[m], y[m]),
            "blend 50/50": _errors(blend[m], y[m]),
            "model (q50)": {
                **_errors(q[m, 1], y[m]),
                "coverage_80": float(covered.mean()),
                "mean_width_days": float((q[m, 2] - q[m, 0]).mean()),
                "urgency_calibration": urgency_calibration(q[m], y[m], horizon),
            },
        }
        if name.startswith(("repeat", "pairs with")):
            methods = {"pair median": _errors(pair[m], y[m]), **methods}
        blend_mae = methods["blend 50/50"]["mae_days"]
        out[name] = {
            "rows": int(m.sum()),
            "methods": methods,
            "mae_ratio_vs_blend": methods["model (q50)"]["mae_days"] / blend_mae
            if blend_mae > 0 else float("nan"),
        }
    return out


@dataclass
class TimingRun:
    """A trained, calibrated timing model with its priors and measured metrics."""

    model: TimingModel
    priors: dict[str, CategoryPrior]
    default_prior: CategoryPrior
    metrics: dict[str, object] = field(default_factory=dict)
    # Test-period feature rows, kept for the ONNX parity check.
    holdout_features: np.ndarray | None = field(default=None, repr=False)

    def sidecar(self, **extra: object) -> dict[str, object]:
        return self.model.sidecar(self.priors, self.default_prior, metrics=self.metrics, **extra)

    def headline(self) -> dict[str, object]:
        """The few numbers a bundle manifest carries (full table in ``timing.json``)."""
        out: dict[str, object] = {}
        for subset, block in self.metrics["test"].items():  # type: ignore[attr-defined]
            if subset.startswith("pairs with"):
                continue
            model = block["methods"]["model (q50)"]
            out[subset.split(" ")[0]] = {
                "rows": block["rows"],
                "mae_days": round(model["mae_days"], 3),
                "blend_mae_days": round(block["methods"]["blend 50/50"]["mae_days"], 3),
                "mae_ratio_vs_blend": round(block["mae_ratio_vs_blend"], 4),
                "coverage_80": round(model["coverage_80"], 4),
            }
        return out


def train_and_evaluate(
    ds: BasketDataset,
    split: TimingSplit | None = None,
    config: TimingModelConfig | None = None,
) -> TimingRun:
    """Replay ``ds``, fit on the training period, calibrate on validation, test on test."""
    split = split or TimingSplit()
    rows = replay(ds)
    y, _ = rows.labels(split.horizon_days)
    train, val, test = split.masks(rows)
    if not (train.any() and val.any() and test.any()):
        raise TimingDataError(
            f"dataset {ds.name!r} too short for the split {asdict(split)}: "
            f"{int(train.sum())} train / {int(val.sum())} val / {int(test.sum())} test rows"
        )
    prior, share, default = category_priors(
        rows.category[train], y[train], len(rows.category_names), split.horizon_days
    )
    features = rows.features.copy()
    set_category_prior(features, prior[rows.category], share[rows.category])

    model = TimingModel.fit(features[train], y[train], config, times=rows.t[train])
    shifts = model.calibrate(features[val], y[val])
    metrics = evaluate_rows(
        model, features[test], rows.subset(test), y[test], prior, split.horizon_days
    )
    period = rows.t[train | val | test]
    result = {
        "dataset": ds.name,
        "split": asdict(split),
        "rows": {"train": int(train.sum()), "val": int(val.sum()), "test": int(test.sum())},
        "capped_share_test": float((y[test] >= split.horizon_days).mean()),
        "calibration_shifts_log_days": shifts,
        "median_shifts_log_days": model.offsets.table[:, 1].tolist(),
        "period_days": float((period.max() - period.min()) / SECONDS_PER_DAY),
        "goal_mae_ratio": GOAL_MAE_RATIO,
        "test": metrics,
    }
    names = rows.category_names
    seen = np.unique(rows.category[train])
    priors = {names[c]: CategoryPrior(float(prior[c]), float(share[c])) for c in seen}
    return TimingRun(
        model=model, priors=priors, default_prior=default, metrics=result,
        holdout_features=features[test],
    )


def format_table(metrics: dict[str, Any]) -> str:
    """Plain-text tables of a :func:`train_and_evaluate` result."""
    lines = [
        f"Purchase timing on {metrics['dataset']} — rows train/val/test {metrics['rows']}, "
        f"horizon {metrics['split']['horizon_days']:.0f} d "
        f"({metrics['capped_share_test']:.1%} of test labels capped)",
    ]
    header = (
        f"{'subset / method':44s} {'MAE d':>7s} {'MedAE d':>8s} {'cover80':>8s} {'width d':>8s}"
    )
    blocks = metrics["test"]
    for subset, block in blocks.items():
        if subset.startswith("pairs with"):
            continue
        lines += ["", f"{subset}: {block['rows']} rows, model MAE / blend MAE = "
                  f"{block['mae_ratio_vs_blend']:.3f}", header]
        for method, m in block["methods"].items():
            cover = f"{m['coverage_80']:.3f}" if "coverage_80" in m else ""
            width = f"{m['mean_width_days']:.1f}" if "mean_width_days" in m else ""
            lines.append(
                f"  {method:42s} {m['mae_days']:7.2f} {m['median_ae_days']:8.2f} "
                f"{cover:>8s} {width:>8s}"
            )
            if "urgency_calibration" in m:
                pairs = ", ".join(
                    f"{p}→{'n/a' if v is None else f'{v:.2f}'}"
                    for p, v in m["urgency_calibration"].items()
                )
                lines.append(f"    urgency calibration (urgency → share bought by then): {pairs}")
    lines += ["", "repeat rows by the pair's history (MAE in days):",
              f"{'history':22s} {'rows':>7s} {'pair':>7s} {'blend':>7s} {'model':>7s} "
              f"{'ratio':>6s} {'cover80':>8s}"]
    for subset, block in blocks.items():
        if not subset.startswith("pairs with"):
            continue
        m = block["methods"]
        lines.append(
            f"{subset.removeprefix('pairs with '):22s} {block['rows']:7d} "
            f"{m['pair median']['mae_days']:7.2f} {m['blend 50/50']['mae_days']:7.2f} "
            f"{m['model (q50)']['mae_days']:7.2f} {block['mae_ratio_vs_blend']:6.3f} "
            f"{m['model (q50)']['coverage_80']:8.3f}"
        )
    return "\n".join(lines)
