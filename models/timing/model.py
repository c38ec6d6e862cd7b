"""Quantile gradient boosting for the days to the next purchase, calibrated and exported.

Three ``HistGradientBoostingRegressor(loss="quantile")`` models (10/50/90%) on log-days
from a moment (a purchase, or any time after it) to the pair's next purchase: quantiles
survive the monotone log, and log-days tames the long tail. The median model is the point
prediction (the median minimises absolute error, the headline metric). Training rows are
weighted by recency (habits drift). On a later validation period the median is
re-centred and the 80% interval widened or narrowed by a conformalized quantile
regression step (Romano et al., 2019), separately per cell of the pair's history length
x the days since its last purchase (one pooled shift over-covers short histories and
long-lapsed pairs and under-covers the rest). The shifts are baked into the ONNX graph
so the edge runs one session that returns final days.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
import onnx
from sklearn.ensemble import HistGradientBoostingRegressor
from threadpoolctl import threadpool_limits

from models import onnx_export
from models.features.segments import SECONDS_PER_DAY
from models.features.timing import FEATURE_NAMES, FEATURE_SCHEMA_VERSION, CategoryPrior
from models.timing.predict import HIGH_Q, LOW_Q, MID_Q, MIN_DAYS

logger = logging.getLogger(__name__)

OUTPUT_NAME = "gap_quantiles_days"
QUANTILES = (LOW_Q, MID_Q, HIGH_Q)
TARGET_COVERAGE = HIGH_Q - LOW_Q
# Calibration cells: purchase occasions so far — 1 (no gap yet), 2, 3-4, 5-8, 9-16, 17+,
# doubling widths like the evaluation's breakdown — by days since the last purchase — at
# the purchase (< 0.5 d), within a week, a month, the horizon, beyond it. A pair seen
# twice is far less predictable than one seen twenty times, and one bought today than one
# not bought for a quarter (most of those never come back within the horizon).
HISTORY_COUNT_EDGES = (2, 3, 5, 9, 17)
ELAPSED_DAY_EDGES = (0.5, 7.0, 30.0, 90.0)
_CALIBRATION_COLUMNS = (FEATURE_NAMES.index("log_count"), FEATURE_NAMES.index("log_elapsed_days"))
# Thresholds on log1p(count) half-way between integer counts: no float ties.
_CALIBRATION_THRESHOLDS = (
    tuple(math.log1p(c - 0.5) for c in HISTORY_COUNT_EDGES),
    tuple(math.log1p(d) for d in ELAPSED_DAY_EDGES),
)
# A bucket needs this many validation rows for its own conformal quantile; fewer use
# the pooled shift (the 80% quantile of a few dozen scores is too noisy).
MIN_BUCKET_CALIBRATION_ROWS = 200


@dataclass(frozen=True)
class TimingModelConfig:
    """Training knobs; defaults were compared on the validation period, never on test.

    On Complete Journey a larger model (400 rounds, 63 leaves, 100-row leaves) did not
    improve the validation MAE (ratio to the blend 0.9345 vs 0.9335, recency-weighted,
    all 456k training rows) for 2.5x the training time.
    """

    max_iter: int = 200
    learning_rate: float = 0.1
    max_leaf_nodes: int = 31
    # Large leaves: tail quantiles (10/90%) from small leaves are noisy.
    min_samples_leaf: int = 200
    # Rows sampled for training. Complete Journey's 456k training rows all fit (with
    # recency weights, every recent row counts: all rows beat a 300k sample on validation).
    max_train_rows: int = 600_000
    # Training rows are weighted by 0.5 ** (age / half-life), age counted back from the
    # newest training row: shopping habits drift, and the model is used after the training
    # period. On Complete Journey's validation period 60 d beat 30, 90 d and no weighting
    # (MAE ratio vs blend 0.9355 vs 0.9369, 0.9370, 0.9385; docs/models-timing.md). None
    # weights every row the same.
    recency_half_life_days: float | None = 60.0
    seed: int = 0
    # OpenMP threads for the tree learner. Its threads spin-wait, so on cores shared with
    # other work two threads were 25x slower than one (26 s vs 1 s, measured on the 2-core
    # build machine under load); None lets OpenMP use every core.
    threads: int | None = 1


class TimingModel:
    """Fitted quantile models plus the calibration shift (log-days) of each quantile."""

    def __init__(
        self, regressors: list[HistGradientBoostingRegressor], horizon_days: float | None = None
    ) -> None:
        if len(regressors) != len(QUANTILES):
            raise ValueError(f"expected {len(QUANTILES)} regressors, got {len(regressors)}")
        self.regressors = regressors
        # Labels are capped here ("not within the horizon"), so predictions are too: what
        # the edge serves is what evaluation scored.
        self.horizon_days = horizon_days
        self.offsets = onnx_export.BucketOffsets.zeros(
            _CALIBRATION_COLUMNS, _CALIBRATION_THRESHOLDS, len(QUANTILES)
        )

    @classmethod
    def fit(
        cls,
        features: np.ndarray,
        gap_days: np.ndarray,
        config: TimingModelConfig | None = None,
        times: np.ndarray | None = None,
        horizon_days: float | None = None,
    ) -> TimingModel:
        """Fit the quantile models; ``times`` (epoch seconds per row) enable recency weights;
        ``horizon_days`` is where the labels were capped (predictions are capped there)."""
        config = config or TimingModelConfig()
        rng = np.random.default_rng(config.seed)
        idx = np.arange(len(gap_days))
        if len(idx) > config.max_train_rows:
            idx = np.sort(rng.choice(idx, config.max_train_rows, replace=False))
        x = np.asarray(features, np.float32)[idx]
        y = np.log(np.maximum(np.asarray(gap_days, np.float64)[idx], MIN_DAYS))
        weight = None
        if times is not None and config.recency_half_life_days is not None and len(idx):
            t = np.asarray(times, np.float64)
            age_days = (t.max() - t[idx]) / SECONDS_PER_DAY
            weight = 0.5 ** (age_days / config.recency_half_life_days)
        with threadpool_limits(limits=config.threads, user_api="openmp"):
            regressors = [cls._fit_one(x, y, q, config, weight) for q in QUANTILES]
        return cls(regressors, horizon_days)

    @staticmethod
    def _fit_one(
        x: np.ndarray, y: np.ndarray, q: float, config: TimingModelConfig,
        weight: np.ndarray | None = None,
    ) -> HistGradientBoostingRegressor:
        reg = HistGradientBoostingRegressor(
            loss="quantile",
            quantile=q,
            max_iter=config.max_iter,
            learning_rate=config.learning_rate,
            max_leaf_nodes=config.max_leaf_nodes,
            min_samples_leaf=config.min_samples_leaf,
            early_stopping=False,
            random_state=config.seed,
        )
        reg.fit(x, y, sample_weight=weight)
        logger.info("fitted timing quantile %.2f on %d rows", q, len(y))
        return reg

    def calibrate(self, features: np.ndarray, gap_days: np.ndarray) -> list[list[float]]:
        """Shift the quantiles per calibration cell on later (validation) rows.

        The interval: split-conformal shifts of each end so it covers TARGET_COVERAGE of
        ``gap_days`` (:func:`_interval_shifts`). The median: moved by the median residual,
        so half the labels fall below it (with feature schema 1 on Complete Journey, the
        fitted median ran short for pairs with 3-4 occasions and long for 9 or more;
        shifting cut the MAE of the later half of the validation period by 0.2% when
        fitted on the earlier half). Cells with few rows use the pooled
        shifts. Returns the table of [lower, median, upper] shifts in log-days per cell.
        """
        raw = self._raw_log_quantiles(features)
        y = np.log(np.maximum(np.asarray(gap_days, np.float64), MIN_DAYS))
        below, above = raw[:, 0] - y, y - raw[:, 2]
        residuals = y - raw[:, 1]
        pooled = (*_interval_shifts(below, above), float(np.median(residuals)) if len(y) else 0.0)
        cells = self.offsets.bucket_of(features)
        rows = []
        for cell in range(self.offsets.n_cells):
            mine = cells == cell
            if mine.sum() < MIN_BUCKET_CALIBRATION_ROWS:
                widen_low, widen_high, mid = pooled
            else:
                widen_low, widen_high = _interval_shifts(below[mine], above[mine])
                mid = float(np.median(residuals[mine]))
            rows.append([-widen_low, mid, widen_high])
        self.offsets = replace(self.offsets, table=np.array(rows))
        logger.info("timing calibrated on %d rows: shifts per cell (low, mid, high) %s",
                    len(y), np.round(self.offsets.table, 3).tolist())
        return self.offsets.table.tolist()

    def _raw_log_quantiles(self, features: np.ndarray) -> np.ndarray:
        x = np.asarray(features, np.float32)
        # Prediction is OpenMP-parallel too; see TimingModelConfig.threads.
        with threadpool_limits(limits=1, user_api="openmp"):
            return np.stack([r.predict(x) for r in self.regressors], axis=1)

    def predict_quantiles(self, features: np.ndarray) -> np.ndarray:
        """Quantiles in days ``[N, 3]`` (scikit-learn path; ONNX gives the same)."""
        days = np.exp(self._raw_log_quantiles(features) + self.offsets.for_rows(features))
        return days if self.horizon_days is None else np.minimum(days, self.horizon_days)

    def to_onnx(self) -> onnx.ModelProto:
        protos = [
            onnx_export.to_onnx_float32(r, len(FEATURE_NAMES), name=f"timing_q{int(q * 100)}")
            for r, q in zip(self.regressors, QUANTILES, strict=True)
        ]
        return onnx_export.combine_regressors(
            protos, OUTPUT_NAME, offsets=self.offsets, exp=True, name="timing",
            upper=self.horizon_days,
        )

    def sidecar(
        self, priors: dict[str, CategoryPrior], default_prior: CategoryPrior, **extra: Any
    ) -> dict[str, Any]:
        """What the edge needs besides the ONNX file (written as ``timing.json``)."""
        return {
            "model": "timing",
            "feature_schema_version": FEATURE_SCHEMA_VERSION,
            "feature_names": list(FEATURE_NAMES),
            "output": OUTPUT_NAME,
            "quantiles": list(QUANTILES),
            "horizon_days": self.horizon_days,
            "calibration": {
                "history_count_edges": list(HISTORY_COUNT_EDGES),
                "elapsed_day_edges": list(ELAPSED_DAY_EDGES),
                "log_offsets": self.offsets.table.tolist(),
            },
            "category_priors": {name: asdict(p) for name, p in sorted(priors.items())},
            "default_category_prior": asdict(default_prior),
            **extra,
        }


def _interval_shifts(below: np.ndarray, above: np.ndarray) -> tuple[float, float]:
    """(widening of the lower end, of the upper end) in log-days, from calibration rows'
    ``below`` = low - y and ``above`` = y - high, so TARGET_COVERAGE of rows fall inside.

    The upper end may miss (1 - HIGH_Q) of rows, the lower end the rest of the budget.
    Where labels pile up at the horizon (a pair not bought again within it), nothing can
    fall above an upper end at the horizon, and the lower end alone makes the interval
    cover 80%, not 90%: one symmetric shift over-covered such cells.
    """
    n = len(above)
    if n == 0:
        return 0.0, 0.0
    widen_high = float(np.quantile(above, _finite_sample_level(HIGH_Q, n)))
    budget = max(1.0 - TARGET_COVERAGE - float(np.mean(above > widen_high)), 0.0)
    return float(np.quantile(below, _finite_sample_level(1.0 - budget, n))), widen_high


def _finite_sample_level(level: float, n: int) -> float:
    """The split-conformal quantile level for ``n`` calibration rows (never below level)."""
    return min(math.ceil((n + 1) * level) / n, 1.0)
