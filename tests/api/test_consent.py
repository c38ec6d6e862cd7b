"""Consent changed through the master-data path takes effect on the shopper's next request."""

from __future__ import annotations

from pathlib import Path

from tests.api.conftest import Store
from tests.test_masterdata import run_import


def test_a_consent_withdrawal_takes_effect_on_the_next_request(weekly_shopper: Store,
                                                               tmp_path: Path) -> None:
    store = weekly_shopper
    assert store.get_shopper("C-WEEKLY", "shopping-list").status_code == 200
    withdrawal = tmp_path / "consent.csv"
    withdrawal.write_text("customer_id,consent_personalization\nC-WEEKLY,no\n")
    assert run_import(store.db_path, "consent", withdrawal).returncode == 0
    response = store.get_shopper("C-WEEKLY", "shopping-list")
    assert response.status_code == 403
    recommendations = store.get_shopper("C-WEEKLY", "recommendations").json()
    assert recommendations["personalized"] is False
