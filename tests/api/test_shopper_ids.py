"""Devices know shoppers only by an opaque id: the loyalty system's customer ids (here
C-WEEKLY, C-PRIVATE, ...; often sequential in a real chain) open nothing, appear in no
answer, and cannot be guessed from one another."""

from __future__ import annotations

import re
import sqlite3

from tests.api.conftest import Store
from tests.ingestion.conftest import count, wait_until

DEVICE_ROUTES = ("recommendations", "shopping-list", "purchase-timing", "shopping-list/route")


def test_the_lookup_gives_an_opaque_id_and_the_customer_id_opens_nothing(
        weekly_shopper: Store) -> None:
    found = weekly_shopper.get("/v1/shoppers/lookup", loyalty_number="1000000001").json()
    opaque = found["customer_id"]
    assert re.fullmatch(r"[0-9a-f]{32}", opaque), opaque  # 128 random bits
    for what in DEVICE_ROUTES:
        assert weekly_shopper.get(f"/v1/shoppers/{opaque}/{what}").status_code == 200, what
        assert weekly_shopper.get(f"/v1/shoppers/C-WEEKLY/{what}").status_code == 404, what
    assert weekly_shopper.get(f"/v1/staff/shoppers/{opaque}/insights",
                              role="staff").status_code == 200
    assert weekly_shopper.get("/v1/staff/shoppers/C-WEEKLY/insights",
                              role="staff").status_code == 404
    assert weekly_shopper.get("/v1/products/MILK/similar",
                              customer_id="C-VEGAN").status_code == 404


def test_no_answer_names_the_customer_id(weekly_shopper: Store) -> None:
    opaque = weekly_shopper.shopper("C-WEEKLY")
    answers = [weekly_shopper.get(f"/v1/shoppers/{opaque}/{what}") for what in DEVICE_ROUTES]
    answers.append(weekly_shopper.get(f"/v1/staff/shoppers/{opaque}/insights", role="staff"))
    answers.append(weekly_shopper.get_shopper("C-PRIVATE", "shopping-list"))  # the 403
    for answer in answers:
        assert answer.status_code in (200, 403)
        assert "C-WEEKLY" not in answer.text and "C-PRIVATE" not in answer.text
    assert answers[-2].json()["customer_id"] == opaque


def test_every_customer_gets_a_different_id_however_it_is_written(store: Store) -> None:
    with sqlite3.connect(store.db_path) as conn:  # raw SQL, as a back office might
        conn.executemany("INSERT INTO customers (customer_id, consent_personalization)"
                         " VALUES (?, 1)", [(f"C{n:05d}",) for n in range(1, 201)])
    refs = [store.shopper(f"C{n:05d}") for n in range(1, 201)]
    assert len(set(refs)) == 200 and all(re.fullmatch(r"[0-9a-f]{32}", r) for r in refs)


def test_feedback_by_opaque_id_is_kept_under_the_customer_and_an_unknown_one_anonymous(
        weekly_shopper: Store) -> None:
    for who in (weekly_shopper.shopper("C-WEEKLY"), "0" * 32):
        answer = weekly_shopper.post("/v1/feedback", {
            "device_id": "kiosk-1", "action": "click", "product_id": "MILK",
            "customer_id": who, "context": "kiosk"})
        assert answer.status_code == 201
    wait_until(lambda: count(weekly_shopper.db_path,
                             "SELECT count(*) FROM interactions") == 2, what="the clicks")
    with sqlite3.connect(weekly_shopper.db_path) as conn:
        kept = sorted(str(row[0]) for row in conn.execute(
            "SELECT customer_id FROM interactions"))
    assert kept == ["C-WEEKLY", "None"]
