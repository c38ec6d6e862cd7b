"""The learned next-basket ranker: candidates → features → gradient-boosted trees.

Trained on the training users of a split only: features come from each user's history,
the label says whether the candidate is in the user's last (target) basket. Validation
users drive early stopping. At prediction time the same candidates and features are
built for any user from their history, and the top-K candidates by predicted
probability are recommended (popular items fill a list that comes up short).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
from sklearn.ensemble import HistGradientBoostingClassifier

from models.datasets.base import BasketDataset
from models.evaluation.protocol import NbrTask, make_task
from models.features.nbr import (
    FEATURE_NAMES,
    StateTable,
    build_state_table,
    candidate_features,
    candidate_scores,
)
from models.features.nbr_stats import ItemStats, fit_item_stats
from models.nbr.base import FitData
from models.nbr.candidates import CandidateConfig, generate_candidates
from models.nbr.topfreq import fill_with_global

logger = logging.getLogger(__name__)

# Shoppers per block when building candidate rows: bounds the co-purchase score
# matrices (shoppers × items) held at once.
SHOPPER_CHUNK = 2000
# Random seed of the tree learner, for repeatable evaluations.
RANDOM_STATE = 0
# Below this many (user, target basket) examples the trees overfit: with ~1,000
# training users (Complete Journey) extra shifted examples help markedly, with ~10,000
# (Ta-Feng) they only cost time. Chosen on Complete Journey's validation users (five
# splits, default trees; mean of Recall@10 and NDCG@10): 4 shifts .1611, 8 shifts .1647,
# 12 shifts .1641. 9,000 gives Complete Journey's 981 training users the 8 and Ta-Feng's
# 9,975 none, as before (12 would have given Ta-Feng one).
MIN_TRAINING_EXAMPLES = 9_000
MAX_AUTO_SHIFTS = 8


def auto_shifts(n_train_users: int) -> int:
    """History shifts needed to reach MIN_TRAINING_EXAMPLES user-examples (capped)."""
    if n_train_users <= 0:
        return 0
    needed = -(-MIN_TRAINING_EXAMPLES // n_train_users) - 1  # ceil division, minus main
    return int(min(max(needed, 0), MAX_AUTO_SHIFTS))


@dataclass(frozen=True)
class RankerConfig:
    """Tree and candidate settings (chosen on training / validation users only)."""

    candidates: CandidateConfig = field(default_factory=CandidateConfig)
    learning_rate: float = 0.1
    max_iter: int = 300
    max_leaf_nodes: int = 31
    min_samples_leaf: int = 200
    l2_regularization: float = 1.0
    # Rounds without improvement of the validation users' log-loss before stopping.
    n_iter_no_change: int = 20
    # Share of negative training rows kept (all positives are). Candidates are ~98%
    # negatives; uniform subsampling keeps the within-user order of scores (it only
    # shifts the log-odds by a constant) and cuts training time several-fold.
    negative_sample_rate: float = 0.3
    # Extra training examples from the same training users one basket earlier: their
    # second-to-last basket as label, features and item statistics from a world where
    # every user's last basket is removed (so nothing about the label leaks in).
    # Each step adds about as many rows as the main examples. None = automatic: enough
    # steps to reach MIN_TRAINING_EXAMPLES user-examples, at most MAX_AUTO_SHIFTS.
    history_shifts: int | None = None
    # False: the request time is unknown (as for the baselines), so the day-based
    # features are missing in training and at prediction; history timestamps remain.
    use_visit_time: bool = True
    # True: :func:`example_weights` (every basket counts once). False: every row weighs 1
    # and no example is dropped, the training before 2026-12-07, kept for comparison
    # (`evaluate --unweighted-ranker`).
    basket_weights: bool = True


@dataclass
class CandidateRows:
    """Candidate rows of a set of users: which user / item each row is, and features."""

    users: np.ndarray
    items: np.ndarray
    features: np.ndarray

    def take(self, keep: np.ndarray) -> CandidateRows:
        return CandidateRows(self.users[keep], self.items[keep], self.features[keep])

    @staticmethod
    def concat(parts: list[CandidateRows]) -> CandidateRows:
        return CandidateRows(np.concatenate([p.users for p in parts]),
                             np.concatenate([p.items for p in parts]),
                             np.vstack([p.features for p in parts]))


@dataclass
class ValidationRows:
    """Validation examples: each validation user's target basket and, with history shifts,
    the baskets before it, each seen from its own shifted world (as the training examples).

    ``rows.users`` holds the example's number (0..n_examples-1), so each example ranks on
    its own; ``truth`` and ``seen`` (examples × items) are its basket and the items bought
    before it. With 109 validation users (Complete Journey) one basket each is too few to
    stop the trees or choose their settings reliably; the earlier baskets multiply them.
    """

    rows: CandidateRows
    y: np.ndarray
    truth: sp.csr_matrix
    seen: sp.csr_matrix

    @property
    def n_examples(self) -> int:
        return int(self.truth.shape[0])

    @staticmethod
    def of_users(rows: CandidateRows, y: np.ndarray, users: np.ndarray,
                 truth: sp.csr_matrix, seen: sp.csr_matrix) -> ValidationRows:
        """Examples of the sorted ``users`` that have rows in one world, in that order."""
        users = users[np.isin(users, rows.users)]
        example = np.searchsorted(users, rows.users)
        return ValidationRows(CandidateRows(example, rows.items, rows.features), y,
                              truth[users], seen[users])

    @staticmethod
    def concat(parts: list[ValidationRows]) -> ValidationRows:
        offsets = np.cumsum([0] + [p.n_examples for p in parts[:-1]])
        rows = CandidateRows.concat([
            CandidateRows(p.rows.users + off, p.rows.items, p.rows.features)
            for p, off in zip(parts, offsets, strict=True)])
        return ValidationRows(rows, np.concatenate([p.y for p in parts]),
                              sp.vstack([p.truth for p in parts]).tocsr(),
                              sp.vstack([p.seen for p in parts]).tocsr())


def build_candidate_rows(
    table: StateTable,
    stats: ItemStats,
    users: np.ndarray,
    now: np.ndarray,
    config: CandidateConfig,
) -> CandidateRows:
    """Candidates and features of the given users (table rows = user codes)."""
    parts_u, parts_i, parts_x = [], [], []
    for lo in range(0, len(users), SHOPPER_CHUNK):
        chunk = users[lo : lo + SHOPPER_CHUNK]
        sub = table.take(chunk)
        cop = candidate_scores(sub, stats)
        rows, items = generate_candidates(sub, stats, cop, config)
        parts_x.append(candidate_features(sub, rows, items, stats, now[chunk][rows], cop))
        parts_u.append(chunk[rows])
        parts_i.append(items)
    return CandidateRows(
        users=np.concatenate(parts_u) if parts_u else np.zeros(0, np.int64),
        items=np.concatenate(parts_i) if parts_i else np.zeros(0, np.int64),
        features=np.vstack(parts_x) if parts_x else np.zeros((0, len(FEATURE_NAMES)),
                                                             np.float32),
    )


def labels(rows: CandidateRows, targets: sp.csr_matrix) -> np.ndarray:
    """1 where the candidate item is in the user's target basket."""
    picked = targets[rows.users, rows.items]
    # scipy returns a dense matrix for most index arrays but a sparse result for some
    # (e.g. empty ones): densify either way before comparing.
    dense = picked.toarray() if hasattr(picked, "toarray") else np.asarray(picked)
    return (dense.ravel() > 0).astype(np.int8)


def shifted_examples(
    dataset: BasketDataset, users: np.ndarray, config: CandidateConfig,
    use_visit_time: bool = True,
) -> tuple[CandidateRows, np.ndarray, NbrTask]:
    """Rows for ``users`` whose label is their last basket in ``dataset``, and that world.

    Everything (item statistics, states) is rebuilt from ``dataset`` minus each user's
    last basket, exactly like the main examples one basket later in time.
    """
    task = make_task(dataset)
    has_history = task.history.baskets_per_user()[users] > 0
    users = users[has_history]
    table = build_state_table(task.history, np.arange(task.n_users))
    stats = fit_item_stats(task.history, table)
    now = task.target_ts if use_visit_time else np.full(task.n_users, np.nan)
    rows = build_candidate_rows(table, stats, users, now, config)
    return rows, labels(rows, task.targets), task


def example_weights(rows: CandidateRows, y: np.ndarray) -> np.ndarray:
    """Per-row training weight: 1 / the example's positive rows (0 if it has none).

    Recall@K counts every basket once, however large, while plain log-loss lets a shopper
    with 30 target items outweigh one with 3 tenfold; sharing one unit of weight among an
    example's positives matches the metric. An example with no target item among its
    candidates cannot be ranked better or worse, so it gets no weight. ``rows`` hold one
    example per user. Complete Journey, five splits' validation examples, default trees:
    mean of Recall@10 and NDCG@10 .1694 unweighted, .1759 so weighted (1 / the basket's size
    on every example, zero-hit ones kept: .1738).
    """
    positives = np.bincount(rows.users, weights=y)[rows.users]
    return np.where(positives > 0, 1.0 / np.maximum(positives, 1.0), 0.0)


def subsample_negatives(
    rows: CandidateRows, y: np.ndarray, weight: np.ndarray, rate: float
) -> tuple[CandidateRows, np.ndarray, np.ndarray]:
    """Drop weightless rows; keep every positive and a seeded random ``rate`` share of the
    negatives."""
    keep = weight > 0
    if rate < 1.0:
        rng = np.random.default_rng(RANDOM_STATE)
        keep &= (y > 0) | (rng.random(len(y)) < rate)
    return rows.take(keep), y[keep], weight[keep]


def top_k_per_user(
    users: np.ndarray, rows: CandidateRows, scores: np.ndarray, k: int
) -> np.ndarray:
    """(len(users) × k) best-scored candidate items per user, −1 padded."""
    out = np.full((len(users), k), -1, dtype=np.int64)
    pos_of = {int(u): i for i, u in enumerate(users)}
    order = np.lexsort((rows.items, -scores, rows.users))
    u_sorted = rows.users[order]
    starts = np.flatnonzero(np.r_[True, u_sorted[1:] != u_sorted[:-1]])
    ends = np.r_[starts[1:], len(order)]
    for s, e in zip(starts, ends, strict=True):
        top = rows.items[order[s : min(e, s + k)]]
        out[pos_of[int(u_sorted[s])], : len(top)] = top
    return out


@dataclass
class TrainingRows:
    """Training rows (negatives subsampled) with labels and :func:`example_weights`, and
    the validation examples."""

    train: CandidateRows
    y: np.ndarray
    weight: np.ndarray
    val: ValidationRows


class NbrRanker:
    """Candidate generation + HistGradientBoosting ranker (see the module docstring)."""

    name = "Ranker"

    def __init__(self, config: RankerConfig | None = None) -> None:
        self.config = config or RankerConfig()
        if not self.config.use_visit_time:
            self.name = "Ranker (no visit time)"

    def fit(self, data: FitData) -> None:
        rows = self.prepare(data)
        self.fit_trees(rows)

    def prepare(self, data: FitData) -> TrainingRows:
        """Item statistics, shopper states and the training / validation rows.

        Split from :meth:`fit_trees` so tree settings can be tuned on rows built once.
        """
        task = data.task
        start = time.perf_counter()
        self.table = build_state_table(task.history, np.arange(task.n_users))
        self.stats = fit_item_stats(task.history, self.table)
        self._now = (task.target_ts if self.config.use_visit_time
                     else np.full(task.n_users, np.nan))
        cfg = self.config
        train, y, weight, val = self._example_rows(data)
        train, y, weight = subsample_negatives(train, y, weight, cfg.negative_sample_rate)
        logger.info(
            "ranker: %d train rows (%.2f%% positive), %d val rows of %d examples, built in "
            "%.1fs", len(y), 100 * y.mean() if len(y) else 0.0, len(val.y), val.n_examples,
            time.perf_counter() - start,
        )
        return TrainingRows(train, y, weight, val)

    def fit_trees(self, rows: TrainingRows, config: RankerConfig | None = None) -> None:
        """Fit the trees on prepared rows (``config`` overrides the tree settings only)."""
        if config is not None:
            self.config = config
        cfg = self.config
        start = time.perf_counter()
        train, y, val, y_val = rows.train, rows.y, rows.val.rows, rows.val.y
        if not y.any():
            # Nothing to learn from: say so, rather than fail inside scikit-learn.
            raise ValueError("too little history to train the ranker: no training shopper's "
                             "last basket holds an item among their candidates")
        # Mean 1, so leaf sizes and L2 keep the scale they were tuned at; None unweighted,
        # so that comparison run is the earlier training exactly.
        weight = rows.weight / rows.weight.mean() if cfg.basket_weights else None
        self.model = HistGradientBoostingClassifier(
            learning_rate=cfg.learning_rate,
            max_iter=cfg.max_iter,
            max_leaf_nodes=cfg.max_leaf_nodes,
            min_samples_leaf=cfg.min_samples_leaf,
            l2_regularization=cfg.l2_regularization,
            early_stopping=True,
            n_iter_no_change=cfg.n_iter_no_change,
            validation_fraction=None,
            random_state=RANDOM_STATE,
        )
        if len(y_val) and y_val.any() and _supports_xval():
            # Early stopping on whole validation users, not random rows of train users.
            self.model.fit(train.features, y, sample_weight=weight, X_val=val.features,
                           y_val=y_val)
        else:
            self.model.set_params(validation_fraction=0.1)
            self.model.fit(train.features, y, sample_weight=weight)
        logger.info("ranker: %d trees, fitted in %.1fs", self.model.n_iter_,
                    time.perf_counter() - start)

    def _example_rows(self, data: FitData
                      ) -> tuple[CandidateRows, np.ndarray, np.ndarray, ValidationRows]:
        """Main examples (last basket) plus the history-shifted ones: the training users'
        to learn from (rows, labels, weights), the validation users' to stop and tune on."""
        cfg, task = self.config, data.task
        main = build_candidate_rows(self.table, self.stats, data.train_users, self._now,
                                    cfg.candidates)
        train, y = [main], [labels(main, data.targets)]
        weight = [self._weights(main, y[0])]
        val_users = np.sort(data.val_users)
        main_val = build_candidate_rows(self.table, self.stats, val_users, self._now,
                                        cfg.candidates)
        val = [ValidationRows.of_users(main_val, labels(main_val, data.targets), val_users,
                                       data.targets, task.history_counts)]
        shifts = cfg.history_shifts
        if shifts is None:
            shifts = auto_shifts(len(data.train_users))
        both = np.concatenate([data.train_users, val_users])
        shifted = task.dataset
        for _ in range(shifts):
            shifted, _last = shifted.drop_last_baskets()
            rows, labelled, world = shifted_examples(shifted, both, cfg.candidates,
                                                     cfg.use_visit_time)
            is_val = np.isin(rows.users, val_users)
            train.append(rows.take(~is_val))
            y.append(labelled[~is_val])
            weight.append(self._weights(train[-1], y[-1]))
            val.append(ValidationRows.of_users(rows.take(is_val), labelled[is_val], val_users,
                                               world.targets, world.history_counts))
        return (CandidateRows.concat(train), np.concatenate(y), np.concatenate(weight),
                ValidationRows.concat(val))

    def _weights(self, rows: CandidateRows, y: np.ndarray) -> np.ndarray:
        if self.config.basket_weights:
            return example_weights(rows, y)
        return np.ones(len(y))

    def score_rows(self, rows: CandidateRows) -> np.ndarray:
        return self.model.predict_proba(rows.features)[:, 1]

    def recommend(self, users: np.ndarray, k: int) -> np.ndarray:
        users = np.asarray(users, dtype=np.int64)
        rows = build_candidate_rows(self.table, self.stats, users, self._now,
                                    self.config.candidates)
        recs = top_k_per_user(users, rows, self.score_rows(rows), k)
        return fill_with_global(recs, self.stats.popular_items(2 * k))


def _supports_xval() -> bool:
    """scikit-learn >= 1.6 takes an explicit validation set in HistGradientBoosting.fit."""
    import inspect

    return "X_val" in inspect.signature(HistGradientBoostingClassifier.fit).parameters
