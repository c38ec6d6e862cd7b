"""The chain's master data down to a store, end to end on the local stand-ins: `cloud-sync
master push` → the IoT Core stand-in → the running agent's downlink → the same
`apply_records` path as `edge-agent import`, and the store's result back to the cloud.
Consent withdrawn stops the shopper's id leaving the store; an erasure empties the edge and
the lake alike; a store that was offline gets what was pushed meanwhile."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import orjson
import pytest

from cloud_sync.cli import main as cloud_sync
from cloud_sync.lake.store import Lake
from cloud_sync.link.mqtt import connect_mqtt5
from cloud_sync.link.privacy import pseudonymize
from cloud_sync.local.stack import LocalCloud
from edge_agent.broker import MosquittoBroker
from tests.cloud.stores import KEY, TS, LakeWorkerProcess, lake_ids, provision
from tests.ingestion.conftest import Publisher, new_id, wait_until

pytestmark = pytest.mark.slow


def jsonl(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records))
    return path


def one(db: Path, sql: str, *params: Any) -> Any:
    with sqlite3.connect(db) as conn:
        row = conn.execute(sql, params).fetchone()
    return None if row is None else row[0]


def test_master_data_reaches_a_running_and_an_offline_store_once_and_erasure_clears_both(
        local_cloud: LocalCloud, agent_factory: Any, mosquitto_broker: MosquittoBroker,
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = "store-md-" + new_id()[:6]
    agent = agent_factory(store, provision(local_cloud, store, tmp_path / "creds"))
    agent.start()
    wait_until(lambda: agent.readyz()[1].get("link", {}).get("state") == "connected",
               timeout=30, what="the store's link up")
    local = ["--local", str(local_cloud.directory)]
    push = ["master", "push"]

    catalog = jsonl(tmp_path / "catalog.jsonl", [
        {"product_id": f"P{n}", "name": f"Product {n}", "category": "dairy", "price": 1.5}
        for n in range(3000)])  # bigger than one 128 KB message
    assert cloud_sync([*push, "catalog", str(catalog), "--store", store, *local,
                       "--version", "5"]) == 0
    out = capsys.readouterr().out
    assert f"{store}:" in out and "applied (" in out, out
    assert one(agent.db, "SELECT count(*) FROM products") == 3000
    # The same file again changes nothing, and says so.
    assert cloud_sync([*push, "catalog", str(catalog), "--store", store, *local,
                       "--version", "5"]) == 0
    assert "already_applied" in capsys.readouterr().out

    # A bad file is refused before anything is sent, naming the row and the field.
    bad = jsonl(tmp_path / "bad.jsonl", [{"product_id": "P-bad", "name": "x", "category": "d",
                                          "price": -1}])
    assert cloud_sync([*push, "catalog", str(bad), "--store", store, *local]) == 2
    assert "row 1, field 'price'" in capsys.readouterr().err
    assert one(agent.db, "SELECT count(*) FROM products WHERE product_id = 'P-bad'") == 0

    # Junk on the store's command topics is refused with a reason and holds nothing up.
    cloud = local_cloud.credentials("cloud-sync", tmp_path / "cloud-client")
    with connect_mqtt5(cloud, "junk-" + new_id()[:6]) as junk:
        for kind in ("masterdata", "lake-ack"):
            assert junk.publish(f"cmd/instore/{store}/{kind}", b"\x00not a message")
    customers = jsonl(tmp_path / "customers.jsonl", [
        {"customer_id": "C1", "loyalty_number": "L0001", "consent_personalization": True}])
    assert cloud_sync([*push, "customers", str(customers), "--store", store, *local]) == 0
    assert one(agent.db, "SELECT consent_personalization FROM customers") == 1

    # The shopper's visits go up under their pseudonym; consent withdrawn from the cloud
    # stops that at once.
    worker = LakeWorkerProcess(local_cloud, "lake-md-" + new_id()[:6])
    worker.start()
    lake = Lake(local_cloud.boto3_client("s3"), "instore-lake")
    till = Publisher(mosquitto_broker.host, mosquitto_broker.port)

    def visit() -> str:
        event = {"event_id": new_id(), "store_id": store, "ts": TS, "type": "presence",
                 "customer_id": "C1", "zone_id": "dairy"}
        till.publish(f"stores/{store}/presence/app-1", event)
        till.flush()
        return event["event_id"]

    try:
        first = visit()
        wait_until(lambda: first in lake_ids(lake, store), timeout=60, what="first visit")
        withdrawal = jsonl(tmp_path / "consent.jsonl",
                           [{"customer_id": "C1", "consent_personalization": False}])
        # As in production: the cloud's own MQTT identity from a credentials directory.
        cloud.write(tmp_path / "cloud-identity")
        assert cloud_sync([*push, "consent", str(withdrawal), "--store", store,
                           "--credentials", str(tmp_path / "cloud-identity")]) == 0
        second = visit()
        wait_until(lambda: second in lake_ids(lake, store), timeout=60, what="second visit")
        by_id = {r["event_id"]: r for r in lake.read(store_id=store).to_pylist()}
        assert by_id[first]["customer_id"] == pseudonymize(KEY, "C1")
        assert by_id[second]["customer_id"] is None

        # Erasure: the customer row and their presence go at the edge, and from the lake.
        key_file = tmp_path / "pseudonym.key"
        key_file.write_bytes(KEY)
        erasure = jsonl(tmp_path / "erasure.jsonl", [{"customer_id": "C1"}])
        assert cloud_sync([*push, "erasure", str(erasure), "--store", store, *local,
                           "--pseudonym-key", str(key_file)]) == 0
        assert "lake: 1 rows" in capsys.readouterr().out
        assert one(agent.db, "SELECT count(*) FROM customers WHERE customer_id = 'C1'") == 0
        assert one(agent.db, "SELECT count(*) FROM presence WHERE customer_id = 'C1'") == 0
        assert first not in lake_ids(lake, store)
    finally:
        till.close()
        worker.stop()

    # A store that was offline gets what was pushed meanwhile, when it comes back.
    agent.stop()
    late = jsonl(tmp_path / "late.jsonl", [
        {"product_id": "P-late", "name": "Late product", "category": "bakery"}])
    local_cloud.boto3_client("s3").upload_file(str(late), "instore-lake", "masterdata/late.jsonl")
    assert cloud_sync([*push, "catalog", "s3://instore-lake/masterdata/late.jsonl",
                       "--store", store, *local, "--wait", "0"]) == 0
    agent.start()
    wait_until(lambda: one(agent.db, "SELECT count(*) FROM products"
                                     " WHERE product_id = 'P-late'") == 1,
               timeout=30, what="the offline store to apply what it missed")
