"""Consent decides what the store keeps: presence and interactions are kept under a
shopper's id only with their consent to personalization."""

from __future__ import annotations

import json

from tests.api.conftest import Store, seed_catalog
from tests.ingestion.conftest import count, interaction_event, presence_event, rows, wait_until


def test_presence_and_interactions_are_kept_only_for_consenting_shoppers(store: Store) -> None:
    seed_catalog(store.db_path)  # C-WEEKLY consented; C-PRIVATE did not
    sent = [presence_event(customer_id=who, zone_id="dairy")
            for who in ("C-WEEKLY", "C-PRIVATE", "C-STRANGER")]
    sent += [interaction_event(customer_id=who, product_id="MILK")
             for who in ("C-WEEKLY", "C-PRIVATE")]
    for event in sent:
        store.publisher.event(event)
    wait_until(lambda: count(store.db_path, "SELECT count(*) FROM events") == len(sent),
               what="the events")
    presence = rows(store.db_path, "SELECT customer_id FROM presence")
    assert [row["customer_id"] for row in presence] == ["C-WEEKLY"]
    clicks = rows(store.db_path, "SELECT customer_id FROM interactions ORDER BY customer_id")
    assert [row["customer_id"] for row in clicks] == [None, "C-WEEKLY"]  # still counted
    # Nothing anywhere names the others, the event log included.
    for who in ("C-PRIVATE", "C-STRANGER"):
        assert count(store.db_path, "SELECT count(*) FROM events WHERE body LIKE ?",
                     f"%{who}%") == 0
    logged = rows(store.db_path, "SELECT body FROM events WHERE type = 'presence'")
    assert sorted(json.loads(r["body"])["customer_id"] or "" for r in logged) == [
        "", "", "C-WEEKLY"]
    # A redelivery of an anonymized event is still a duplicate (a later one marks the time).
    store.publisher.event(sent[1])
    store.publisher.event(presence_event(customer_id="C-WEEKLY", zone_id="bakery"))
    wait_until(lambda: count(store.db_path, "SELECT count(*) FROM presence") == 2,
               what="the later event")
    assert count(store.db_path, "SELECT count(*) FROM events") == len(sent) + 1
