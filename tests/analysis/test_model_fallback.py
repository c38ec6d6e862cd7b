"""The model-based fallback on a known history: the release bundle's timing model gives each
category's date and 80 % interval, exactly what the edge's own feature state and the same
model predict; its segment model gives churn and value; a shopper it cannot place, or no
bundle, gets the rules; accuracy scoring keeps the two fallbacks apart."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from cloud_sync.analysis.accuracy import AccuracyStore, by_group, purchase_days
from cloud_sync.analysis.fallback import fallback_result
from cloud_sync.analysis.history import AnalysisHistory
from cloud_sync.analysis.model_fallback import ModelFallback
from cloud_sync.analysis.summary import summarize_lake
from edge_agent.features.shopper import SaleLine, ShopperFeatures
from models.bundle.errors import BundleError
from models.bundle.verify import verify_bundle
from models.timing.serving import TimingPredictor
from tests.analysis.conftest import CATALOG, NOW, PRICES, sale, shopper, weekly_rows

pytestmark = pytest.mark.slow  # trains the session's bundles once


def edge_state(rows: list[dict[str, Any]]) -> ShopperFeatures:
    """The shopper's state as the edge keeps it, sale by sale."""
    features = ShopperFeatures()
    for row in sorted(rows, key=lambda r: r["ts"]):
        lines = [SaleLine(i["product_id"], CATALOG[i["product_id"]], i["quantity"])
                 for i in row["items"]]
        features.apply_sale(row["ts"].timestamp(), lines, sum(
            i["quantity"] * PRICES[i["product_id"]] for i in row["items"]))
    return features


def test_the_fallback_gives_the_timing_models_dates_and_intervals(bundles: Any) -> None:
    alice = weekly_rows("alice")
    summaries = summarize_lake(alice, CATALOG, now=NOW)
    models = ModelFallback.load(bundles.v1, bundles.public_key, alice, CATALOG, now=NOW)
    result = fallback_result(summaries[shopper("alice")], "not configured", models=models)
    assert (result.producer, result.fallback_reason) == ("fallback", "not configured")
    assert (result.model_id, result.detail) == ("test-1", "models test-1")
    assert result.producer_key == "fallback models test-1"

    forecasts = result.analysis.forecasts
    assert {f.category for f in forecasts} == {"Milk", "Bread", "Coffee"}
    edge = edge_state(alice)
    timing = TimingPredictor.from_bundle(verify_bundle(bundles.v1, bundles.public_key))
    expected = timing.predict([(edge.categories[f.category], f.category) for f in forecasts],
                              edge.trips, NOW.timestamp())
    tomorrow = NOW.date() + timedelta(days=1)

    def day(days: float) -> date:
        return (NOW + timedelta(days=days)).date()

    for f, p in zip(forecasts, expected, strict=True):
        assert f.next_purchase_date == max(tomorrow, day(p.days_until))
        assert f.window_start == min(max(tomorrow, day(p.low_days)), f.next_purchase_date)
        assert f.window_end == max(f.next_purchase_date, day(p.high_days))
        assert f.reason.startswith("Timing model test-1") and 0 <= f.confidence <= 1
    assert result.analysis.churn_risk.reason.startswith("Segment model test-1: '")
    assert result.analysis.lifestyle[0].label.startswith("segment: ")


def test_without_the_shoppers_state_or_a_bundle_the_rules_answer(bundles: Any) -> None:
    rows = weekly_rows("alice") + weekly_rows("bob", 5, last_days_ago=30.0)
    summaries = summarize_lake(rows, CATALOG, now=NOW)
    # The models know alice only (their rows); bob falls back to the rules.
    models = ModelFallback.load(bundles.v1, bundles.public_key, weekly_rows("alice"),
                                CATALOG, now=NOW)
    bob = fallback_result(summaries[shopper("bob")], "failed", detail="boom", models=models)
    assert (bob.model_id, bob.detail, bob.producer_key) == (None, "rules: boom", "fallback")
    plain = fallback_result(summaries[shopper("alice")], "budget")
    assert (plain.model_id, plain.detail) == (None, "rules")


def test_a_bundle_that_does_not_verify_is_refused(bundles: Any, tmp_path: Path) -> None:
    with pytest.raises(BundleError):
        ModelFallback.load(bundles.tampered(tmp_path / "bad"), bundles.public_key,
                           weekly_rows("alice"), CATALOG, now=NOW)


def test_accuracy_scores_the_model_fallback_as_its_own_producer(bundles: Any,
                                                                tmp_path: Path) -> None:
    rows = weekly_rows("alice") + weekly_rows("bob", 5, last_days_ago=30.0)
    summaries = summarize_lake(rows, CATALOG, now=NOW)
    models = ModelFallback.load(bundles.v1, bundles.public_key, rows, CATALOG, now=NOW)
    history = AnalysisHistory(tmp_path / "history.sqlite")
    history.save(fallback_result(summaries[shopper("alice")], "not configured", models=models))
    history.save(fallback_result(summaries[shopper("bob")], "not configured"))
    # Both buy milk and bread every day of the next three weeks: every prediction's outcome
    # is known.
    later = [sale(who, NOW + timedelta(days=d), {"p-milk": 1, "p-bread": 1, "p-coffee": 1})
             for who in ("alice", "bob") for d in range(1, 22)]
    store = AccuracyStore(history)
    new, _ = store.score(purchase_days(rows + later, CATALOG),
                               observed_until=(NOW + timedelta(days=21)).date())
    assert new > 0
    groups = by_group(store.scores())
    assert set(groups) == {("fallback models test-1", "-"), ("fallback", "-")}
    assert groups[("fallback models test-1", "-")].scored == len(
        [s for s in store.scores() if s.shopper_id == shopper("alice")])


def test_analyze_fleet_with_a_bundle(bundles: Any, tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    import json

    import pyarrow as pa
    import pyarrow.parquet as pq

    from cloud_sync.cli import main
    from cloud_sync.lake.schema import EVENT_SCHEMA

    now = datetime.now(UTC)
    rows = [sale(who, now - timedelta(days=d), {"p-milk": 1, "p-bread": 1})
            for who in ("ann", "ben") for d in (2, 9, 16, 23)]
    pq.write_table(pa.Table.from_pylist([{**r, "event_id": str(i)} for i, r in enumerate(rows)],
                                        schema=EVENT_SCHEMA), tmp_path / "lake.parquet")
    (tmp_path / "catalog.csv").write_text(
        "product_id,category\n" + "".join(f"{p},{c}\n" for p, c in CATALOG.items()))
    lake = ["--parquet", str(tmp_path / "lake.parquet"), "--catalog",
            str(tmp_path / "catalog.csv"), "--state-dir", str(tmp_path / "state")]
    assert main(["analyze", "shopper", shopper("ann"), *lake, "--bundle", str(bundles.v1),
                 "--public-key", str(bundles.public_key)]) == 0
    result = json.loads(capsys.readouterr().out.splitlines()[0])
    assert (result["producer"], result["model_id"], result["fallback_reason"]) == (
        "fallback", "test-1", "not configured")
    assert result["analysis"]["forecasts"][0]["reason"].startswith("Timing model test-1")
    assert main(["analyze", "fleet", *lake, "--bundle", str(bundles.v1)]) == 2
    assert "--bundle needs --public-key" in capsys.readouterr().err
