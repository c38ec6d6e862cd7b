"""Segment names on a short history: a store (or a demo) with four weeks of sales has every
shopper under two months old. Naming each shopper by their own RFM values, against that
history, still tells a regular from a newcomer (clusters named from their centroids once
called all of them "new")."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from models.bundle import build_bundle, load_private_key
from models.timing.synthetic import generate
from models.training import train_segments
from tests.api.conftest import Store, buy, seed_catalog
from tests.ingestion.conftest import count, wait_until

# Four weeks of history, like `edge-agent demo`.
SHORT_HISTORY_DAYS = 28
NEWCOMER = {"customer_id": "C-FRESH", "loyalty_number": "1000000005", "household_size": 2,
            "consent_personalization": 1, "consent_staff_assist": 1}
SETTLED = {"champions", "loyal", "potential loyalists", "occasional"}


@pytest.fixture
def short_history_models(store: Store, tmp_path: Path) -> Store:
    """The test bundle with its segments retrained on 28 days of baskets, loaded."""
    models = tmp_path / "models"
    shutil.copytree(store.bundles.models_dir, models)
    summary = train_segments(generate(n_users=120, days=SHORT_HISTORY_DAYS, seed=0), models)
    assert set(summary["shoppers_per_segment"]) != {"new"}
    bundle = build_bundle(models, tmp_path / "bundle", load_private_key(store.bundles.private_key),
                          version="test-2-short-history")
    loaded = store.post("/v1/admin/models/load", {"path": store.drop(bundle)}, role="admin")
    assert loaded.status_code == 200, loaded.text
    return store


def test_a_regular_is_not_new_on_a_short_history(short_history_models: Store) -> None:
    import sqlite_utils

    store = short_history_models
    seed_catalog(store.db_path)
    db = sqlite_utils.Database(store.db_path)
    db["customers"].upsert(NEWCOMER, pk="customer_id")
    db.close()
    sales = [buy(store, "C-WEEKLY", age, "MILK", "BREAD") for age in (27, 23, 20, 16, 13, 9, 6, 2)]
    sales += [buy(store, "C-FRESH", age, "MILK") for age in (3, 1)]
    wait_until(lambda: count(store.db_path, "SELECT count(*) FROM events") == len(sales),
               what="the sales")

    def segment(customer: str) -> str:
        insights = store.get_insights(customer).json()
        assert insights["model_version"] == "test-2-short-history"
        return str(insights["segment"])

    assert segment("C-WEEKLY") in SETTLED
    assert segment("C-FRESH") == "new"
