"""Recommendations: popular and non-personal without consent or ranker; rules always apply."""

from __future__ import annotations

import pytest

from tests.api.conftest import Store, buy
from tests.ingestion.conftest import count, wait_until


@pytest.fixture
def busy_week(weekly_shopper: Store) -> Store:
    """This week, milk and bread sold in three baskets each, laundry in one."""
    before = count(weekly_shopper.db_path, "SELECT count(*) FROM events")
    for days in (1, 2, 3):
        buy(weekly_shopper, "C-PRIVATE", days, "MILK", "BREAD")
    wait_until(lambda: count(weekly_shopper.db_path, "SELECT count(*) FROM events")
               == before + 3)
    return weekly_shopper


def test_without_consent_they_are_the_stores_favourites(busy_week: Store) -> None:
    body = busy_week.get("/v1/shoppers/C-PRIVATE/recommendations").json()
    assert body["personalized"] is False
    ids = [item["product_id"] for item in body["items"]]
    assert set(ids[:2]) == {"MILK", "BREAD"} and {"SOAP", "OAT"} <= set(ids[2:])
    assert all(item["reason"] == "Popular in this store this week" for item in body["items"])
    assert all(item["model_version"] is None for item in body["items"])


def test_diet_applies_to_favourites_for_a_consenting_shopper(busy_week: Store) -> None:
    body = busy_week.get("/v1/shoppers/C-VEGAN/recommendations").json()
    ids = {item["product_id"] for item in body["items"]}
    assert "MILK" not in ids and "BREAD" in ids


def test_context_sets_how_many_items(busy_week: Store) -> None:
    weekly_shopper = busy_week
    body = weekly_shopper.get("/v1/shoppers/C-WEEKLY/recommendations", context="display",
                              limit=2).json()
    assert body["context"] == "display" and len(body["items"]) == 2
    bad = weekly_shopper.get("/v1/shoppers/C-WEEKLY/recommendations", context="tv")
    assert bad.status_code == 422 and "query.context" in bad.json()["error"]["fields"]


def test_unknown_shopper_is_404(weekly_shopper: Store) -> None:
    assert weekly_shopper.get("/v1/shoppers/NOBODY/recommendations").status_code == 404
