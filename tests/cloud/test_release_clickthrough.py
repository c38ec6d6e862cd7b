"""Click-through measured by a real store on probation and reported to the cloud: kiosk
feedback (POST /v1/feedback) for the served version before the swap and for the new one
during its probation ends up in the execution's status details; and the measurement itself
on a real store database."""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx

from cloud_sync.local.stack import LocalCloud
from cloud_sync.release.document import StatusDetails
from edge_agent.storage.database import open_database
from edge_agent.updates.clickthrough import BASELINE_WINDOW, before_and_after, measure
from models.events import format_ts, utc_now
from tests.cloud.stores import RunningAgent
from tests.cloud.test_model_updates import (  # noqa: F401  (the `store` fixture)
    KIOSK_KEY,
    outcome,
    release,
    served,
    store,
)
from tests.ingestion.conftest import wait_until
from tests.model_bundles import Bundles

PROBATION_S = 8  # long enough to send the new version's feedback once it is served


def feedback(agent: RunningAgent, version: str, impressions: int, clicks: int) -> None:
    """What the kiosk sends: an impression per recommendation shown, a click per tap."""
    with httpx.Client(base_url=f"http://127.0.0.1:{agent.port}",
                      headers={"X-API-Key": KIOSK_KEY}, timeout=10) as http:
        for n in range(impressions + clicks):
            body = {"device_id": "kiosk-1", "customer_id": "C-1", "context": "recommendations",
                    "action": "impression" if n < impressions else "click",
                    "product_id": f"P{n % 5}", "model_version": version}
            assert http.post("/v1/feedback", json=body).status_code == 201


def test_a_store_reports_click_through_before_and_after_the_swap(
        local_cloud: LocalCloud, store: RunningAgent,  # noqa: F811
        bundles: Bundles, tmp_path: Path) -> None:
    feedback(store, "test-1", impressions=20, clicks=5)
    job = release(local_cloud, store.store, bundles.build(tmp_path / "v2.tar.gz", "test-2"),
                  "test-2", probation_s=PROBATION_S)
    wait_until(lambda: served(store) == "test-2", timeout=60, what="test-2 served")
    feedback(store, "test-2", impressions=10, clicks=1)
    status, details = outcome(local_cloud, job, store.store)
    assert status == "SUCCEEDED", details
    reported = StatusDetails.from_map(details)
    assert (reported.ctr_before, reported.impressions_before) == (0.25, 20)
    assert (reported.ctr_after, reported.impressions_after) == (0.1, 10)


def _insert(conn: sqlite3.Connection, rows: list[tuple[str, str, str, Any]]) -> None:
    conn.executemany(
        "INSERT INTO interactions (event_id, device_id, customer_id, action, product_id,"
        " context, model_version, ts) VALUES (?, 'k', 'C', ?, 'P', ?, ?, ?)",
        [(f"e{i}", action, context, version, format_ts(ts))
         for i, (action, context, version, ts) in enumerate(rows)])


def test_click_through_counts_recommendations_of_one_version_in_its_window(
        tmp_path: Path) -> None:
    db = tmp_path / "store.db"
    swap = utc_now() - timedelta(minutes=10)
    rows = [("impression", "recommendations", "v1", swap - timedelta(days=1))] * 4
    rows += [("click", "recommendations", "v1", swap - timedelta(hours=1))]
    rows += [("impression", "recommendations", "v1", swap - BASELINE_WINDOW * 2)]  # too old
    rows += [("impression", "shopping_list", "v1", swap - timedelta(hours=2))]  # not recs
    rows += [("impression", "recommendations", "v2", swap + timedelta(minutes=1))] * 5
    rows += [("click", "recommendations", "v2", swap + timedelta(minutes=2))] * 2
    rows += [("impression", "recommendations", None, swap + timedelta(minutes=1))]  # popular
    database = open_database(db)
    with database.conn:
        _insert(database.conn, rows)
    database.close()
    assert before_and_after(db, "v1", "v2", swap, utc_now()) == {
        "ctr_before": 0.25, "impressions_before": 4, "ctr_after": 0.4, "impressions_after": 5}
    # No version before (a first install), or the same one (a restart): no "before" side.
    assert set(before_and_after(db, None, "v2", swap, utc_now())) == {
        "ctr_after", "impressions_after"}
    # A store without the table yet measures nothing rather than failing the release.
    assert measure(tmp_path / "missing.db", "v2", swap, utc_now()).impressions == 0
