"""The shopper summary from lake rows: rhythms, recency, visit pattern, household signals,
and a digest that moves with purchases, not with time passing."""

from __future__ import annotations

from datetime import timedelta

import pyarrow as pa

from cloud_sync.analysis.summary import summarize_lake, summary_digest
from cloud_sync.lake.schema import EVENT_SCHEMA
from tests.analysis.conftest import CATALOG, NOW, sale, shopper, weekly_rows


def test_rhythm_recency_and_visits_of_a_weekly_shopper() -> None:
    summaries = summarize_lake(weekly_rows("alice", 8, last_days_ago=2.0), CATALOG, now=NOW)
    s = summaries[shopper("alice")]
    by_category = {c.category: c for c in s.categories}
    assert by_category["Milk"].median_gap_days == 7.0
    assert by_category["Milk"].gap_variation == 0.0
    assert by_category["Coffee"].median_gap_days == 14.0
    assert by_category["Milk"].purchases == 8 and by_category["Coffee"].purchases == 4
    assert by_category["Milk"].units_total == 16.0
    assert by_category["Bread"].spend_total == 16.0
    assert by_category["Milk"].last_purchase_days_ago == 2.08  # 10:00 two days before noon
    assert [c.category for c in s.categories][:2] == ["Milk", "Bread"]  # most bought first
    assert s.visits.visits == 8 and s.visits.usual_weekday == "sat"
    assert s.visits.usual_hour_band == "morning" and s.visits.usual_weekday_share == 1.0
    assert 1.0 <= s.visits.visits_per_week <= 1.2
    assert s.household.mean_items_per_basket == 2.5
    assert s.as_of == NOW.date()


def test_anonymous_and_future_sales_are_nobodys_history_and_a_table_reads_the_same() -> None:
    rows = [*weekly_rows("alice", 3), sale(None, NOW - timedelta(days=1), {"p-milk": 1}),
            sale("alice", NOW + timedelta(days=1), {"p-pizza": 1})]
    summaries = summarize_lake(rows, CATALOG, now=NOW)
    assert list(summaries) == [shopper("alice")]
    assert "Frozen Meals" not in {c.category for c in summaries[shopper("alice")].categories}
    table = pa.Table.from_pylist([{**r, "event_id": str(i)} for i, r in enumerate(rows)],
                                 schema=EVENT_SCHEMA)
    assert summarize_lake(table, CATALOG, now=NOW) == summaries


def test_digest_changes_with_a_purchase_not_with_time() -> None:
    rows = weekly_rows("alice", 6)
    before = summarize_lake(rows, CATALOG, now=NOW)[shopper("alice")]
    later = summarize_lake(rows, CATALOG, now=NOW + timedelta(days=3))[shopper("alice")]
    assert summary_digest(before) == summary_digest(later)
    bought = summarize_lake([*rows, sale("alice", NOW, {"p-nappies": 1})], CATALOG,
                            now=NOW + timedelta(days=3))[shopper("alice")]
    assert summary_digest(bought) != summary_digest(before)
