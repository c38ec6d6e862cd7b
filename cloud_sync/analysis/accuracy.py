"""Prediction accuracy: every stored per-category next-purchase date, scored against what the
shopper really bought, once the lake knows.

The outcome of a prediction made on `as_of` (the summary's date) for category C is the first
purchase of C on a later day. A prediction is scored once its outcome is known:

- `purchased`: that purchase is in the lake. Days off = actual − predicted (positive: later
  than predicted); within ±2 days or not; covered when its window holds the actual date.
- `missed` (censored): no purchase of C yet, and the lake reaches at least 2 days past the
  predicted date, so whatever happens later the prediction was not within ±2 days. It counts
  as a miss in the within-±2 share, and as not covered once the lake reaches past its
  window's end; it has no days off (only a lower bound), so it is left out of the days-off
  statistics and counted on its own line.
- `pending`: neither yet: not stored, scored on a later run.

Scores are kept in the history's SQLite file, one row per (analysis, category); a stored
score is final, so a rerun only scores what has become known since.
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from statistics import mean, median
from typing import Any, Literal

import pyarrow as pa

from cloud_sync.analysis.history import AnalysisHistory
from cloud_sync.analysis.schema import CategoryForecast
from models.datasets.lake import load_lake

WITHIN_DAYS = 2  # the tolerance: a reminder a day or two off is still useful
Status = Literal["purchased", "missed"]
Purchases = Mapping[tuple[str, str], list[date]]  # (shopper, category) -> sorted days


@dataclass(frozen=True)
class Score:
    analysis_id: int
    shopper_id: str
    category: str
    producer: str  # the Bedrock model id, "fallback models VERSION" or "fallback" (rules)
    arm: str | None
    predicted: date
    status: Status
    actual: date | None
    days_off: int | None
    within: bool
    covered: bool | None  # None: no window, or not known yet


def purchase_days(rows: pa.Table | Iterable[Mapping[str, Any]],
                  categories: Mapping[str, str]) -> dict[tuple[str, str], list[date]]:
    """Per (pseudonym, category), the sorted UTC days it was bought, from lake rows."""
    ds = load_lake(rows, categories=categories)
    days: dict[tuple[str, str], set[date]] = defaultdict(set)
    if ds.category_names is None:
        return {}
    for user, ts, cat in zip(ds.user, ds.ts, ds.category, strict=True):
        key = (ds.user_ids[int(user)], ds.category_names[int(cat)])
        days[key].add(datetime.fromtimestamp(float(ts), UTC).date())
    return {k: sorted(v) for k, v in days.items()}


def score_forecast(forecast: CategoryForecast, as_of: date, bought: list[date],
                   observed_until: date) -> tuple[Status, date | None, int | None, bool,
                                                  bool | None] | None:
    """(status, actual, days off, within ±2, covered), or None while still pending."""
    predicted = forecast.next_purchase_date
    actual = next((d for d in bought if as_of < d <= observed_until), None)
    has_window = forecast.window_start is not None or forecast.window_end is not None
    start = forecast.window_start or predicted
    end = forecast.window_end or predicted
    if actual is not None:
        off = (actual - predicted).days
        covered = start <= actual <= end if has_window else None
        return "purchased", actual, off, abs(off) <= WITHIN_DAYS, covered
    if (observed_until - predicted).days >= WITHIN_DAYS:
        covered = False if has_window and observed_until >= end else None
        return "missed", None, None, False, covered
    return None


class AccuracyStore:
    """The scores, next to the analyses they score (the history's file)."""

    def __init__(self, history: AnalysisHistory) -> None:
        self.history = history
        with self._connect() as db:
            db.execute("CREATE TABLE IF NOT EXISTS prediction_scores ("
                       "analysis_id INTEGER NOT NULL, category TEXT NOT NULL, "
                       "shopper_id TEXT NOT NULL, producer TEXT NOT NULL, arm TEXT, "
                       "predicted TEXT NOT NULL, status TEXT NOT NULL, actual TEXT, "
                       "days_off INTEGER, within INTEGER NOT NULL, covered INTEGER, "
                       "scored_at TEXT NOT NULL, PRIMARY KEY (analysis_id, category))")

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.history.path, timeout=10.0)

    def score(self, purchases: Purchases, observed_until: date,
              now: datetime | None = None) -> tuple[int, int]:
        """Score every stored prediction whose outcome is now known; (new scores, pending)."""
        with self._connect() as db:
            done = {(a, c) for a, c in db.execute(
                "SELECT analysis_id, category FROM prediction_scores")}
        new: list[Score] = []
        pending = 0
        for analysis_id, result in self.history.rows():
            as_of = result.as_of or result.created_at.astimezone(UTC).date()
            for f in result.analysis.forecasts:
                if (analysis_id, f.category) in done:
                    continue
                outcome = score_forecast(f, as_of, purchases.get(
                    (result.shopper_id, f.category), []), observed_until)
                if outcome is None:
                    pending += 1
                    continue
                new.append(Score(analysis_id, result.shopper_id, f.category,
                                 result.producer_key, result.arm, f.next_purchase_date,
                                 *outcome))
        stamp = (now or datetime.now(UTC)).isoformat()
        with self._connect() as db:
            db.executemany(
                "INSERT OR IGNORE INTO prediction_scores VALUES "
                "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(s.analysis_id, s.category, s.shopper_id, s.producer, s.arm,
                  s.predicted.isoformat(), s.status, s.actual.isoformat() if s.actual else None,
                  s.days_off, int(s.within), None if s.covered is None else int(s.covered),
                  stamp) for s in new])
        return len(new), pending

    def scores(self) -> list[Score]:
        with self._connect() as db:
            rows = db.execute(
                "SELECT analysis_id, shopper_id, category, producer, arm, predicted, status, "
                "actual, days_off, within, covered FROM prediction_scores "
                "ORDER BY analysis_id, category").fetchall()
        return [Score(int(r[0]), r[1], r[2], r[3], r[4], date.fromisoformat(r[5]), r[6],
                      date.fromisoformat(r[7]) if r[7] else None, r[8], bool(r[9]),
                      None if r[10] is None else bool(r[10])) for r in rows]


@dataclass(frozen=True)
class AccuracyStats:
    scored: int  # purchased + missed
    purchased: int
    missed: int  # censored: no purchase 2+ days past the predicted date
    within_share: float | None  # of all scored (a miss is not within)
    mean_abs_days_off: float | None  # purchased only
    median_abs_days_off: float | None
    mean_days_off: float | None  # signed: > 0, bought later than predicted
    coverage: float | None  # of scored with a window and a known coverage
    coverage_n: int


def accuracy_stats(scores: Iterable[Score]) -> AccuracyStats:
    scores = list(scores)
    offs = [s.days_off for s in scores if s.days_off is not None]
    windows = [s.covered for s in scores if s.covered is not None]
    return AccuracyStats(
        scored=len(scores), purchased=len(offs), missed=len(scores) - len(offs),
        within_share=_share(sum(s.within for s in scores), len(scores)),
        mean_abs_days_off=_round(mean(abs(o) for o in offs)) if offs else None,
        median_abs_days_off=_round(median(abs(o) for o in offs)) if offs else None,
        mean_days_off=_round(mean(offs)) if offs else None,
        coverage=_share(sum(windows), len(windows)), coverage_n=len(windows))


def by_group(scores: Iterable[Score]) -> dict[tuple[str, str], AccuracyStats]:
    """Stats per (producer, arm); an analysis outside an A/B has arm "-"."""
    groups: dict[tuple[str, str], list[Score]] = defaultdict(list)
    for s in scores:
        groups[(s.producer, s.arm or "-")].append(s)
    return {k: accuracy_stats(v) for k, v in sorted(groups.items())}


def _share(hits: int, n: int) -> float | None:
    return round(hits / n, 4) if n else None


def _round(x: float) -> float:
    return round(float(x), 3)
