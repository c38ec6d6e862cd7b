"""The words and the order a shopper reads: the most overdue habit first, category names
that read as nouns, plurals; no suggestion of what they bought today."""

from __future__ import annotations

import pytest

from edge_agent.shoppers import words
from tests.api.conftest import Store, buy, seed_catalog
from tests.ingestion.conftest import count, wait_until

NAPPIES = {"product_id": "NAPPIES", "name": "Nappies pack of 40", "category": "baby",
           "price": 7.5, "allergens": "[]", "diets": "[]"}


@pytest.fixture
def lapsing_habit(store: Store) -> Store:
    """C-WEEKLY bought bread every 3 days until 14 days ago (4.7 cycles late), milk weekly
    (last 6 days ago, not yet due), nappies weekly (last 7 days ago, due today)."""
    import sqlite_utils

    seed_catalog(store.db_path)
    db = sqlite_utils.Database(store.db_path)
    db["products"].upsert(NAPPIES, pk="product_id")
    db.close()
    sales = [buy(store, "C-WEEKLY", age, "BREAD") for age in (26, 23, 20, 17, 14)]
    sales += [buy(store, "C-WEEKLY", age, "MILK") for age in (27, 20, 13, 6)]
    sales += [buy(store, "C-WEEKLY", age, "NAPPIES") for age in (28, 21, 14, 7)]
    wait_until(lambda: count(store.db_path, "SELECT count(*) FROM events") == len(sales),
               what="the sales")
    return store


def test_the_most_overdue_habit_comes_first(lapsing_habit: Store) -> None:
    items = lapsing_habit.get_shopper("C-WEEKLY", "shopping-list").json()["items"]
    order = [item["product_id"] for item in items]
    assert order[:2] == ["BREAD", "NAPPIES"], order
    by_id = {item["product_id"]: item for item in items}
    assert by_id["BREAD"]["status"] == "urgent" and by_id["NAPPIES"]["status"] == "urgent"
    assert by_id["BREAD"]["reason"] == ("You buy bread about every 3 days; "
                                        "last bought 14 days ago.")


def test_categories_read_as_nouns(lapsing_habit: Store) -> None:
    items = lapsing_habit.get_shopper("C-WEEKLY", "shopping-list").json()["items"]
    nappies = next(item for item in items if item["product_id"] == "NAPPIES")
    assert nappies["category"] == "baby"  # the key stays as it is
    assert nappies["reason"] == "You buy baby products about every 7 days; last bought 7 days ago."
    insights = lapsing_habit.get_insights("C-WEEKLY").json()
    assert "baby products" in insights["favourite_categories"]


def test_plurals() -> None:
    assert [words.count(n, "stop") for n in (0, 1, 2)] == ["0 stops", "1 stop", "2 stops"]
    assert [words.every(n) for n in (1, 3)] == ["every day", "every 3 days"]
    assert [words.ago(n) for n in (0, 1, 5)] == ["today", "yesterday", "5 days ago"]
