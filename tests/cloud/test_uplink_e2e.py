"""The store–cloud link end to end, on the local stand-ins: a real agent (`edge-agent run`)
ingesting from its store broker, uplinking over mutual TLS to the IoT Core stand-in, a real
lake worker process (`cloud-sync lake worker`) writing Parquet to moto's S3.

Every event reaches the lake exactly once (counted by event_id, after compaction) through a
link that was down while 200,000 events piled up, a broker restart mid-drain, kill -9 of the
agent mid-uplink and kill -9 of the lake worker mid-write."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow.compute as pc
import pytest

from cloud_sync.lake.store import Lake
from cloud_sync.link.privacy import pseudonymize
from cloud_sync.local.stack import LocalCloud
from edge_agent.broker import MosquittoBroker
from edge_agent.storage import open_database
from tests.cloud.stores import KEY, TS, LakeWorkerProcess, lake_ids, provision
from tests.ingestion.conftest import Publisher, new_id, wait_until

BACKLOG_EVENTS = 200_000

pytestmark = pytest.mark.slow


def zone_event(store: str, n: int) -> dict[str, Any]:
    return {"event_id": new_id(), "store_id": store, "ts": TS, "type": "zone.traffic",
            "people": n % 40, "avg_dwell_s": float(n % 300)}


def test_every_event_reaches_the_lake_exactly_once_through_outage_restarts_and_kills(
        local_cloud: LocalCloud, lake: Lake, agent_factory: Any,
        mosquitto_broker: MosquittoBroker, tmp_path: Path) -> None:
    store = "store-e2e-" + new_id()[:6]
    agent = agent_factory(store, provision(local_cloud, store, tmp_path / "creds"))
    worker = LakeWorkerProcess(local_cloud, "lake-e2e-" + new_id()[:6])
    local_cloud.broker.stop()  # the store's internet link is down
    try:
        agent.start()
        wait_until(lambda: agent.readyz()[1]["checks"]["broker"], timeout=30,
                   what="the agent subscribed to its store broker")
        published: list[str] = []
        till = Publisher(mosquitto_broker.host, mosquitto_broker.port)
        for n in range(BACKLOG_EVENTS):
            event = zone_event(store, n)
            till.publish(f"stores/{store}/zone/dairy", event)
            published.append(event["event_id"])
            if n % 5000 == 4999:
                till.flush(60)
        till.flush(60)
        till.close()

        def backlog() -> int:
            _status, body = agent.readyz()
            return (body.get("link") or {}).get("backlog_events", 0)

        wait_until(lambda: backlog() >= BACKLOG_EVENTS, timeout=120,
                   what="every event committed and waiting in the outbox")
        status, body = agent.readyz()
        assert status == 200, body  # no cloud is no reason to stop serving
        assert any(d.startswith("link:") for d in body["degraded"]), body

        # The link comes back; the lake worker starts; then everything that can fail does.
        local_cloud.broker.start()
        worker.start()
        wait_until(lambda: len(lake_ids(lake, store)) >= 20_000, timeout=120,
                   what="the drain to start")
        local_cloud.broker.restart()
        wait_until(lambda: len(lake_ids(lake, store)) >= 60_000, timeout=120,
                   what="the drain to go on after a broker restart")
        agent.kill()  # kill -9 mid-uplink
        agent.start()
        wait_until(lambda: len(lake_ids(lake, store)) >= 100_000, timeout=120,
                   what="the drain to go on after the agent was killed")
        worker.kill()  # kill -9 mid-write
        worker.start()
        wait_until(lambda: len(lake_ids(lake, store)) >= BACKLOG_EVENTS, timeout=240,
                   what="the whole backlog in the lake")
        wait_until(lambda: backlog() == 0, timeout=30, what="the outbox empty")
    finally:
        worker.stop()
        if not local_cloud.broker.running:
            local_cloud.broker.start()

    for partition in lake.partitions(store_id=store):
        lake.compact(partition)
    table = lake.read(store_id=store)
    raw_rows = sum(lake.compact(p).rows_before for p in lake.partitions(store_id=store))
    assert raw_rows == BACKLOG_EVENTS  # after compaction: each event exactly once
    assert sorted(table["event_id"].to_pylist()) == sorted(published)
    assert pc.all(pc.equal(table["store_id"], store)).as_py()


def test_consent_decides_whose_id_leaves_the_store(
        local_cloud: LocalCloud, lake: Lake, agent_factory: Any,
        mosquitto_broker: MosquittoBroker, tmp_path: Path) -> None:
    store = "store-consent-" + new_id()[:6]
    db_path = tmp_path / f"{store}.db"
    database = open_database(db_path)
    database["customers"].insert_all([
        {"customer_id": "C1", "loyalty_number": "L1", "consent_personalization": 1},
        {"customer_id": "C2", "loyalty_number": "L2", "consent_personalization": 0}])
    database.conn.close()
    agent = agent_factory(store, provision(local_cloud, store, tmp_path / "creds"))
    worker = LakeWorkerProcess(local_cloud, "lake-consent-" + new_id()[:6])
    worker.start()
    try:
        agent.start()
        wait_until(lambda: agent.readyz()[1]["checks"]["broker"], timeout=30, what="ready")
        till = Publisher(mosquitto_broker.host, mosquitto_broker.port)
        ids = {}
        for shopper in ("C1", "C2", "C1"):
            event = {"event_id": new_id(), "store_id": store, "ts": TS, "type": "presence",
                     "customer_id": shopper, "zone_id": "dairy"}
            till.publish(f"stores/{store}/presence/app-{shopper}", event)
            ids[event["event_id"]] = shopper
            till.flush()
            if len(ids) == 2:  # C1 withdraws consent after their first visit was sent
                wait_until(lambda: len(lake_ids(lake, store)) == 2, timeout=60, what="sent")
                with open_database(db_path).conn as conn:
                    conn.execute("UPDATE customers SET consent_personalization = 0"
                                 " WHERE customer_id = 'C1'")
        till.close()
        wait_until(lambda: len(lake_ids(lake, store)) == 3, timeout=60, what="all sent")
    finally:
        worker.stop()
    rows = {r["event_id"]: r for r in lake.read(store_id=store).to_pylist()}
    shoppers = [rows[event_id]["customer_id"] for event_id in ids]
    assert shoppers == [pseudonymize(KEY, "C1"), None, None]
    assert all(rows[e]["device_id"] is None for e in ids)  # the app's id names the shopper
    # Erasure in the lake: the shopper's presence goes.
    assert lake.erase([pseudonymize(KEY, "C1")]) == 1
    assert len(lake_ids(lake, store)) == 2


def test_batches_no_lake_worker_wrote_are_sent_again_until_the_lake_has_them(
        local_cloud: LocalCloud, lake: Lake, agent_factory: Any,
        mosquitto_broker: MosquittoBroker, tmp_path: Path) -> None:
    # IoT Core acknowledges a batch whether or not a lake worker is there to take it (and
    # Mosquitto 2.0.11 forgets the workers' shared subscription when it restarts): the
    # store keeps its events until the lake confirms them, and sends them again.
    store = "store-nolake-" + new_id()[:6]
    agent = agent_factory(store, provision(local_cloud, store, tmp_path / "creds"))
    agent.settings["uplink_lake_confirm_timeout_s"] = "2"
    agent.start()
    wait_until(lambda: agent.readyz()[1].get("link", {}).get("state") == "connected",
               timeout=30, what="the store's link up")
    till = Publisher(mosquitto_broker.host, mosquitto_broker.port)
    sent = []
    for n in range(500):
        event = zone_event(store, n)
        till.publish(f"stores/{store}/zone/dairy", event)
        sent.append(event["event_id"])
    till.flush()
    till.close()

    def link() -> dict[str, Any]:
        return agent.readyz()[1]["link"]

    # The broker took everything (no subscriber: PUBACK 0x10), the lake has nothing.
    wait_until(lambda: link()["unconfirmed_events"] == 500, timeout=30, what="sent, unconfirmed")
    assert link()["backlog_events"] == 500 and lake_ids(lake, store) == []
    worker = LakeWorkerProcess(local_cloud, "lake-late-" + new_id()[:6])
    worker.start()
    try:
        wait_until(lambda: sorted(lake_ids(lake, store)) == sorted(sent), timeout=60,
                   what="the events sent again, into the lake")
        wait_until(lambda: link()["backlog_events"] == 0, timeout=30, what="confirmed")
    finally:
        worker.stop()
