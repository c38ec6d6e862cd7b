"""The demo's analysis step: the demo's cloud (its own start-up: TLS Mosquitto, moto, the
store provisioned with the chain's pseudonym key) analyses the consenting shoppers of its
lake without Bedrock, even with AWS keys in the environment, and pushes each store its own;
the store's own link receives them and its insights code stores them, shown to staff as the
fallback, "not configured"."""

from __future__ import annotations

import contextlib
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from awscrt import mqtt5

from cloud_sync.link.batch import Batch
from cloud_sync.link.credentials import LinkCredentials
from cloud_sync.link.mqtt import connect_mqtt5
from cloud_sync.link.privacy import pseudonymize
from cloud_sync.local.broker import find_mosquitto
from edge_agent.demo.analysis import analyze_and_push
from edge_agent.demo.catalog import generate_catalog
from edge_agent.demo.cloud import start_cloud
from edge_agent.demo.seed import seed_demo_data
from edge_agent.demo.shoppers import generate_shoppers
from edge_agent.insights.apply import apply_insights
from edge_agent.insights.store import latest_insight
from edge_agent.storage import open_database

STORE = "store-001"


def test_the_demos_analysis_reaches_the_store_as_the_fallback(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if find_mosquitto() is None:
        pytest.skip("mosquitto is not installed")
    # Keys that look real: the demo must still not call Bedrock.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLEEXAMPLE00")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-a-real-secret")
    catalog = generate_catalog(0)
    shoppers = generate_shoppers(catalog, 40, seed=0)
    db = open_database(tmp_path / "edge.db")
    seed_demo_data(db, catalog, shoppers)
    helped = [s for s in shoppers if s.consent_personalization and s.consent_staff_assist]
    others = [s for s in shoppers if s.consent_personalization and not s.consent_staff_assist]
    assert helped and others

    with contextlib.ExitStack() as cleanup:
        cloud = start_cloud(tmp_path / "cloud", tmp_path / "fleet", [STORE], cleanup)
        link = LinkCredentials.load(cloud.credentials[STORE])
        assert link.pseudonym_key is not None
        key = link.pseudonym_key
        # Four weekly visits each, as the store's uplink would have written them.
        now = datetime.now(UTC)
        events = [{"event_id": f"e-{s.customer_id}-{week}", "store_id": STORE,
                   "type": "pos.transaction",
                   "ts": (now - timedelta(days=2 + 7 * week)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                   "transaction_id": f"t-{s.customer_id}-{week}",
                   "customer_id": pseudonymize(key, s.customer_id),
                   "items": [{"product_id": p.product_id, "quantity": 1,
                              "unit_price": p.price, "discount": 0.0} for p in catalog[:3]],
                   "total": sum(p.price for p in catalog[:3])}
                  for s in helped[:2] + others[:2] for week in range(4)]
        cloud.lake.write_batch(Batch(STORE, "demo-analysis-1", events))

        received: list[tuple[str, bytes]] = []
        arrived = threading.Event()

        def on_publish(packet: mqtt5.PublishPacket) -> None:
            received.append((packet.topic, bytes(packet.payload)))
            arrived.set()

        with connect_mqtt5(link, STORE, on_publish) as store_link:  # the store's own link
            store_link.subscribe([f"cmd/instore/{STORE}/insights"])
            done = analyze_and_push(
                cloud.cloud, cloud.lake, {p.product_id: p.category for p in catalog},
                tmp_path / "analysis", store_shoppers={STORE: (cloud.credentials[STORE],
                                                               shoppers)})
            assert arrived.wait(15), "no insights reached the store"

    assert done.shoppers == 4 and done.producers == {"fallback": 4}
    assert done.try_loyalty == {STORE: helped[0].loyalty_number}
    line = done.line()
    assert "without Bedrock (fallback: not configured" in line and "store-001 4" in line
    [(topic, payload)] = received
    outcome = apply_insights(db.conn, payload, topic=topic, pseudonym_key=key,
                             max_raw_bytes=4096)
    assert (outcome.stored, outcome.skipped) == (2, 2)  # staff-assist consent only
    stored = latest_insight(db.conn, helped[0].customer_id)
    assert stored is not None
    assert (stored.producer, stored.fallback_reason) == ("fallback", "not configured")
    assert latest_insight(db.conn, others[0].customer_id) is None
    db.close()
