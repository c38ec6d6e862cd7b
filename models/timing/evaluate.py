"""Purchase timing: time-based split, baselines, metrics, and the train-and-evaluate run.

Protocol (the same for every method):

- a prediction is made for a (shopper, category) pair at a *moment*: "between purchases"
  is every pair bought before, on each day a week apart in the period (what a shopping
  list asks: the edge predicts at the moment a shopper looks), "at the purchase" is each
  purchase occasion itself (the protocol of feature schema 1). The label is the number of
  days from the moment to the pair's next occasion, capped at ``horizon_days`` ("not
  within H days" counts as H), so only moments with H days of follow-up are used;
- moments are split by time: the last ``test_days`` before the follow-up margin are the
  test period, the ``val_days`` before them validation (calibration of the median and
  interval only), everything earlier training. No test label is used for training,
  calibration, the category priors or tuning a baseline;
- baselines: the pair's median gap so far, the category's median gap in training, and
  their 50/50 blend (the category median alone when the pair has no gap yet), each counted
  from the last purchase (:class:`Baselines`), plus the blend with a lapse rule tuned on
  training moments;
- metrics: MAE and median absolute error in days, the 80% interval's coverage and width,
  and the urgency's calibration (P(bought within a week) against what happened).
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from models.datasets.base import BasketDataset
from models.features.segments import SECONDS_PER_DAY
from models.features.timing import CategoryPrior, set_category_prior
from models.timing.data import (
    Moments,
    TimingDataError,
    TimingRows,
    at_cutoffs,
    at_occasions,
    replay,
)
from models.timing.model import TimingModel, TimingModelConfig
from models.timing.predict import URGENCY_WINDOW_DAYS, urgency

logger = logging.getLogger(__name__)

# A category needs this many training rows for its own median; fewer falls back to the
# overall median (a median of a handful of gaps is mostly noise).
MIN_CATEGORY_ROWS = 30
BLEND_WEIGHT = 0.5  # the baseline: a 50/50 blend of pair and category medians
GOAL_MAE_RATIO = 0.8  # the goal: model MAE <= 0.8 x the blend baseline
# An urgency decile needs this many rows for its observed share to mean something.
MIN_URGENCY_BIN_ROWS = 50
MODEL = "model (q50)"
LAPSE_RULE = "blend, lapsed when overdue"
# "Lapsed once elapsed > k x the blend gap": k is tuned on training moments from these.
LAPSE_AFTER_GRID = (1.0, 1.5, 2.0, 3.0, 4.0, math.inf)
# The manifest's headline: every pair at a day between purchases (what a shopping list
# shows), and at the purchase for pairs with a cycle (the protocol of schema 1).
HEADLINE_SUBSETS = (("between purchases", "all"),
                    ("between purchases", "repeat (pair has >= 1 gap)"),
                    ("at the purchase", "repeat (pair has >= 1 gap)"))
# Test rows the ONNX parity check runs on (a random sample; all would take minutes).
PARITY_ROWS = 200_000
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
    # Moments between purchases: every pair bought before, on each of these days. Weekly
    # in validation and test (every weekday's pairs are alike, a week apart they move on);
    # twice a week in training, sampled down to ``train_cutoff_rows``.
    cutoff_step_days: float = 7.0
    train_cutoff_step_days: float = 3.5
    train_cutoff_rows: int = 300_000
    val_cutoff_rows: int = 200_000

    def windows(self, rows: TimingRows) -> tuple[float, float, float]:
        """(validation start, test start, test end) in epoch seconds."""
        test_end = rows.end_t - self.horizon_days * SECONDS_PER_DAY
        test_start = test_end - self.test_days * SECONDS_PER_DAY
        return test_start - self.val_days * SECONDS_PER_DAY, test_start, test_end

    def masks(self, rows: TimingRows) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Occasion rows in the training, validation and test periods (full follow-up)."""
        _, usable = rows.labels(self.horizon_days)
        val_start, test_start, test_end = self.windows(rows)
        train = usable & (rows.t < val_start)
        val = usable & (rows.t >= val_start) & (rows.t < test_start)
        test = usable & (rows.t >= test_start) & (rows.t <= test_end)
        return train, val, test

    def cutoffs(self, start: float, end: float, step_days: float) -> np.ndarray:
        """Moments from ``start`` up to ``end`` (inclusive) every ``step_days``."""
        return np.arange(start, end + 1.0, step_days * SECONDS_PER_DAY)


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


def urgency_calibration(urgency: np.ndarray, y: np.ndarray) -> dict[str, object]:
    """Urgency (P(bought within the window)) against what happened, by urgency decile.

    ``bins``: per decile with enough rows, [mean urgency, share bought within the window,
    rows]; ``error``: the row-weighted mean gap between the two (0 is calibrated).
    """
    bought = y <= URGENCY_WINDOW_DAYS
    which = np.minimum((urgency * 10).astype(int), 9)
    bins, gaps, weights = [], [], []
    for b in range(10):
        m = which == b
        if m.sum() < MIN_URGENCY_BIN_ROWS:
            continue
        said, seen = float(urgency[m].mean()), float(bought[m].mean())
        bins.append([round(said, 4), round(seen, 4), int(m.sum())])
        gaps.append(abs(said - seen))
        weights.append(int(m.sum()))
    error = float(np.average(gaps, weights=weights)) if weights else None
    return {"window_days": URGENCY_WINDOW_DAYS, "bins": bins, "error": error}


def _errors(pred: np.ndarray, y: np.ndarray) -> dict[str, float]:
    err = np.abs(pred - y)
    return {"mae_days": float(err.mean()), "median_ae_days": float(np.median(err))}


@dataclass(frozen=True)
class Baselines:
    """The issue's baselines, as predictions of the days from a moment to the next purchase.

    Each predicts a gap (the pair's median gap so far, the category's median gap in
    training, their 50/50 blend; the category's alone when the pair has no gap yet) and
    counts it from the last purchase: ``max(gap - elapsed, 0)``, "due now" once overdue.
    At a purchase (elapsed 0) that is the gap itself. A stronger rule, tuned on training
    moments, says "not within the horizon" once the blend is ``lapse_after`` times overdue.
    """

    category_median_gap: np.ndarray  # per category code, days
    horizon_days: float
    lapse_after: float = math.inf

    def predict(self, rows: TimingRows, m: Moments) -> dict[str, np.ndarray]:
        h = self.horizon_days
        elapsed = m.elapsed_days(rows)
        cat = np.minimum(self.category_median_gap[rows.category[m.row]], h)
        pair = np.minimum(rows.pair_median_gap[m.row], h)
        blend = np.where(np.isnan(pair), cat, BLEND_WEIGHT * pair + (1 - BLEND_WEIGHT) * cat)
        lapsed = elapsed > self.lapse_after * blend
        return {
            "pair median": np.maximum(pair - elapsed, 0.0),
            "category median": np.maximum(cat - elapsed, 0.0),
            "blend 50/50": np.maximum(blend - elapsed, 0.0),
            LAPSE_RULE: np.where(lapsed, h, np.maximum(blend - elapsed, 0.0)),
        }

    def tuned(self, rows: TimingRows, m: Moments, y: np.ndarray) -> Baselines:
        """This baseline with the ``lapse_after`` of lowest MAE on moments ``m``."""
        def mae(k: float) -> float:
            rule = replace(self, lapse_after=k).predict(rows, m)[LAPSE_RULE]
            return float(np.abs(rule - y).mean())

        return replace(self, lapse_after=min(LAPSE_AFTER_GRID, key=mae)) if len(y) else self


def _subsets(rows: TimingRows, m: Moments, horizon: float) -> dict[str, np.ndarray]:
    gaps = rows.n_gaps[m.row]
    elapsed = m.elapsed_days(rows)
    subsets = {
        "all": np.ones(len(m), dtype=bool),
        "repeat (pair has >= 1 gap)": gaps >= 1,
        "first repurchase (no gap yet)": gaps == 0,
    }
    if (elapsed > 0).any():  # moments between purchases
        subsets |= {
            f"repeat, bought in the last {horizon:.0f} d": (gaps >= 1) & (elapsed <= horizon),
            "overdue (elapsed > the pair's median gap)":
                (gaps >= 1) & (elapsed > rows.pair_median_gap[m.row]),
            f"lapsed (last bought > {horizon:.0f} d ago)": elapsed > horizon,
        }
    for lo, hi in HISTORY_BUCKETS:
        label = f"{lo}+" if hi is None else f"{lo}" if hi == lo + 1 else f"{lo}-{hi - 1}"
        top = hi if hi is not None else np.iinfo(np.int32).max
        subsets[f"pairs with {label} gap{'' if label == '1' else 's'}"] = (gaps >= lo) & (
            gaps < top)
    return subsets


def evaluate_moments(
    model: TimingModel, rows: TimingRows, m: Moments, y: np.ndarray, baselines: Baselines,
) -> dict[str, dict[str, object]]:
    """Metrics of the model and the baselines at moments ``m``, per subset."""
    h = baselines.horizon_days
    q = np.sort(model.predict_quantiles(m.features), axis=1)  # capped at h by the model
    urgent = urgency(q)
    predicted = baselines.predict(rows, m)
    out: dict[str, dict[str, object]] = {}
    for name, mask in _subsets(rows, m, h).items():
        if not mask.any():
            continue
        methods: dict[str, dict[str, object]] = {
            method: _errors(p[mask], y[mask]) for method, p in predicted.items()
            if not np.isnan(p[mask]).any()
        }
        covered = (y[mask] >= q[mask, 0]) & (y[mask] <= q[mask, 2])
        model_metrics: dict[str, object] = {
            **_errors(q[mask, 1], y[mask]),
            "coverage_80": float(covered.mean()),
            "mean_width_days": float((q[mask, 2] - q[mask, 0]).mean()),
            "urgency_calibration": urgency_calibration(urgent[mask], y[mask]),
        }
        model_mae = float(model_metrics["mae_days"])  # type: ignore[arg-type]
        best = min(methods, key=lambda k: float(methods[k]["mae_days"]))
        out[name] = {
            "rows": int(mask.sum()),
            "methods": {**methods, MODEL: model_metrics},
            "mae_ratio_vs_blend": _ratio(model_mae, methods["blend 50/50"]["mae_days"]),
            "best_baseline": best,
            "mae_ratio_vs_best_baseline": _ratio(model_mae, methods[best]["mae_days"]),
        }
    return out


def _ratio(a: float, b: object) -> float | None:
    """a / b; None (JSON null) when a baseline is exact on the subset."""
    b = float(b)  # type: ignore[arg-type]
    return a / b if b > 0 else None


def _fmt(ratio: float | None) -> str:
    return "n/a" if ratio is None else f"{ratio:.3f}"


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
        for moment, subset in HEADLINE_SUBSETS:
            block = self.metrics["test"][moment].get(subset)  # type: ignore[index]
            if block is None:
                continue
            model = block["methods"][MODEL]
            out[f"{moment}: {subset}"] = {
                "rows": block["rows"],
                "mae_days": round(model["mae_days"], 3),
                "blend_mae_days": round(block["methods"]["blend 50/50"]["mae_days"], 3),
                "mae_ratio_vs_blend": block["mae_ratio_vs_blend"],
                "mae_ratio_vs_best_baseline": block["mae_ratio_vs_best_baseline"],
                "coverage_80": round(model["coverage_80"], 4),
                "urgency_calibration_error": model["urgency_calibration"]["error"],
            }
        return out


@dataclass(frozen=True)
class _Periods:
    train: Moments
    val: Moments
    test_between: Moments
    test_at_purchase: Moments


def _moments(rows: TimingRows, split: TimingSplit, seed: int) -> _Periods:
    """Training, validation and test moments (see the module docstring)."""
    rng = np.random.default_rng(seed)
    train, val, test = split.masks(rows)
    val_start, test_start, test_end = split.windows(rows)
    step = split.train_cutoff_step_days * SECONDS_PER_DAY
    # As with occasions, a training moment precedes validation; its label may reach past.
    train_cuts = split.cutoffs(float(rows.t.min()) + step, val_start - 1.0,
                               split.train_cutoff_step_days)
    val_cuts = split.cutoffs(val_start, test_start - 1.0, split.cutoff_step_days)
    return _Periods(
        train=Moments.concat([
            at_occasions(rows, np.nonzero(train)[0]),
            _sampled_cutoffs(rows, train_cuts, split.train_cutoff_rows, rng),
        ]),
        val=Moments.concat([
            at_occasions(rows, np.nonzero(val)[0]),
            _sampled_cutoffs(rows, val_cuts, split.val_cutoff_rows, rng),
        ]),
        test_between=at_cutoffs(
            rows, split.cutoffs(test_start, test_end, split.cutoff_step_days)),
        test_at_purchase=at_occasions(rows, np.nonzero(test)[0]),
    )


def _sampled_cutoffs(
    rows: TimingRows, cutoffs: np.ndarray, max_rows: int, rng: np.random.Generator
) -> Moments:
    # Pairs only accumulate, so the last cutoff's count bounds every cutoff's.
    bound = len(rows.active_at(float(cutoffs[-1]))) * len(cutoffs) if len(cutoffs) else 0
    return at_cutoffs(rows, cutoffs, min(1.0, max_rows / bound) if bound else 1.0, rng)


def train_and_evaluate(
    ds: BasketDataset,
    split: TimingSplit | None = None,
    config: TimingModelConfig | None = None,
) -> TimingRun:
    """Replay ``ds``, fit on the training period, calibrate on validation, test on test."""
    split = split or TimingSplit()
    config = config or TimingModelConfig()
    h = split.horizon_days
    rows = replay(ds)
    y_occasion, _ = rows.labels(h)
    train, val, test = split.masks(rows)
    if not (train.any() and val.any() and test.any()):
        raise TimingDataError(
            f"dataset {ds.name!r} too short for the split {asdict(split)}: "
            f"{int(train.sum())} train / {int(val.sum())} val / {int(test.sum())} test rows"
        )
    prior, share, default = category_priors(
        rows.category[train], y_occasion[train], len(rows.category_names), h
    )
    periods = _moments(rows, split, config.seed)
    for m in (periods.train, periods.val, periods.test_between, periods.test_at_purchase):
        set_category_prior(m.features, prior[rows.category[m.row]], share[rows.category[m.row]])
    y_train = periods.train.labels(rows, h)
    model = TimingModel.fit(periods.train.features, y_train, config, times=periods.train.t,
                            horizon_days=h)
    shifts = model.calibrate(periods.val.features, periods.val.labels(rows, h))
    between = periods.train.elapsed_days(rows) > 0
    baselines = Baselines(prior, h).tuned(rows, periods.train.subset(between), y_train[between])
    test_moments = {"between purchases": periods.test_between,
                    "at the purchase": periods.test_at_purchase}
    metrics = {
        name: evaluate_moments(model, rows, m, m.labels(rows, h), baselines)
        for name, m in test_moments.items()
    }
    result = {
        "dataset": ds.name,
        "split": asdict(split),
        "rows": {"train": len(periods.train), "val": len(periods.val),
                 **{f"test {k}": len(m) for k, m in test_moments.items()}},
        "capped_share_test": {k: float((m.labels(rows, h) >= h).mean())
                              for k, m in test_moments.items()},
        # JSON has no infinity: None is "never lapses" (the plain blend won on training).
        "lapse_after_tuned_on_train": baselines.lapse_after
        if math.isfinite(baselines.lapse_after) else None,
        "calibration_shifts_log_days": shifts,  # per cell: [low, median, high]
        "period_days": float((rows.t.max() - rows.t.min()) / SECONDS_PER_DAY),
        "goal_mae_ratio": GOAL_MAE_RATIO,
        "test": metrics,
    }
    names = rows.category_names
    seen = np.unique(rows.category[train])
    priors = {names[c]: CategoryPrior(float(prior[c]), float(share[c])) for c in seen}
    holdout = Moments.concat(list(test_moments.values()))
    parity_rows = np.random.default_rng(config.seed).permutation(len(holdout))[:PARITY_ROWS]
    return TimingRun(
        model=model, priors=priors, default_prior=default, metrics=result,
        holdout_features=holdout.features[np.sort(parity_rows)],
    )


def format_table(metrics: dict[str, Any]) -> str:
    """Plain-text tables of a :func:`train_and_evaluate` result."""
    h = metrics["split"]["horizon_days"]
    lines = [
        f"Purchase timing on {metrics['dataset']} — moments {metrics['rows']}, horizon {h:.0f} d; "
        f"blend lapse rule tuned on training: after "
        f"{metrics['lapse_after_tuned_on_train'] or 'never (inf)'}x the gap",
    ]
    header = (f"{'subset / method':48s} {'MAE d':>7s} {'MedAE d':>8s} {'cover80':>8s} "
              f"{'width d':>8s}")
    for moment, blocks in metrics["test"].items():
        capped = metrics["capped_share_test"][moment]
        lines += ["", f"=== predicted {moment} ({capped:.1%} of labels capped at {h:.0f} d) ==="]
        for subset, block in blocks.items():
            if subset.startswith("pairs with"):
                continue
            lines += ["", f"{subset}: {block['rows']} rows, model MAE / blend = "
                      f"{_fmt(block['mae_ratio_vs_blend'])}, / best baseline "
                      f"({block['best_baseline']}) = {_fmt(block['mae_ratio_vs_best_baseline'])}",
                      header]
            for method, m in block["methods"].items():
                cover = f"{m['coverage_80']:.3f}" if "coverage_80" in m else ""
                width = f"{m['mean_width_days']:.1f}" if "mean_width_days" in m else ""
                lines.append(f"  {method:46s} {m['mae_days']:7.2f} {m['median_ae_days']:8.2f} "
                             f"{cover:>8s} {width:>8s}")
                if "urgency_calibration" in m:
                    cal = m["urgency_calibration"]
                    said_seen = ", ".join(f"{a:.2f}→{b:.2f}" for a, b, _ in cal["bins"])
                    error = "n/a" if cal["error"] is None else f"{cal['error']:.3f}"
                    lines.append(f"    urgency (P(bought within {cal['window_days']:.0f} d)) → "
                                 f"share bought: {said_seen}; error {error}")
        lines += ["", "repeat pairs by history (MAE in days):",
                  f"{'history':22s} {'rows':>8s} {'pair':>7s} {'blend':>7s} {'best':>7s} "
                  f"{'model':>7s} {'/blend':>7s} {'/best':>7s} {'cover80':>8s}"]
        for subset, block in blocks.items():
            if not subset.startswith("pairs with"):
                continue
            m = block["methods"]
            lines.append(
                f"{subset.removeprefix('pairs with '):22s} {block['rows']:8d} "
                f"{m['pair median']['mae_days']:7.2f} {m['blend 50/50']['mae_days']:7.2f} "
                f"{m[block['best_baseline']]['mae_days']:7.2f} {m[MODEL]['mae_days']:7.2f} "
                f"{_fmt(block['mae_ratio_vs_blend']):>7s} "
                f"{_fmt(block['mae_ratio_vs_best_baseline']):>7s} "
                f"{m[MODEL]['coverage_80']:8.3f}"
            )
    return "\n".join(lines)
