"""Recommendation click-through of one model version, from the store's `interactions` table.

The kiosk sends an `impression` for each recommendation it shows and a `click` when the
shopper taps one, with context `recommendations` and the `model_version` that ranked it
(`kiosk_ui/static/kiosk.js`). A release's probation measures the new version over the
probation and the version served before over a window before the swap; the store reports
both, and the controller pools them over a wave (`cloud_sync/release/evidence.py`).
"""

from __future__ import annotations

import logging
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from models.events import format_ts

logger = logging.getLogger(__name__)

RECOMMENDATIONS_CONTEXT = "recommendations"
# The previous version's baseline: a week before the swap covers every weekday and hour a
# probation can fall in, and far more impressions than the probation itself (interactions
# are kept 30 days by default, so the week is there).
BASELINE_WINDOW = timedelta(days=7)
# A read on the agent's own WAL database: wait this long for a writer's lock, then give up
# (the release goes on without click-through rather than stall).
BUSY_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class ClickThrough:
    impressions: int = 0
    clicks: int = 0

    @property
    def ctr(self) -> float:
        return min(1.0, self.clicks / self.impressions) if self.impressions else 0.0


def measure(db: Path, version: str, since: datetime, until: datetime) -> ClickThrough:
    """Impressions and clicks of recommendations ranked by ``version`` in [since, until)."""
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_S)
    except sqlite3.Error as exc:
        logger.warning("click-through of %s not measured: %s", version, exc)
        return ClickThrough()
    try:
        row = conn.execute(
            "SELECT count(*) FILTER (WHERE action = 'impression'),"
            " count(*) FILTER (WHERE action = 'click') FROM interactions"
            " WHERE context = ? AND model_version = ? AND ts >= ? AND ts < ?",
            (RECOMMENDATIONS_CONTEXT, version, format_ts(since), format_ts(until))).fetchone()
    except sqlite3.Error as exc:  # a missing table in a fresh store, a long lock
        logger.warning("click-through of %s not measured: %s", version, exc)
        return ClickThrough()
    finally:
        conn.close()
    return ClickThrough(int(row[0]), int(row[1]))


def before_and_after(db: Path, previous: str | None, version: str, swapped: datetime,
                     now: datetime) -> dict[str, float | int]:
    """The StatusDetails fields: the new version since the swap, the previous one over the
    baseline window before it (left out when no version was served before)."""
    after = measure(db, version, swapped, now)
    fields: dict[str, float | int] = {"ctr_after": round(after.ctr, 6),
                                      "impressions_after": after.impressions}
    if previous is not None and previous != version:
        before = measure(db, previous, swapped - BASELINE_WINDOW, swapped)
        fields |= {"ctr_before": round(before.ctr, 6), "impressions_before": before.impressions}
    return fields
