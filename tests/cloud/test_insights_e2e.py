"""The chain's analyses back in the store, end to end on the local stand-ins: shoppers' sales
go up to the lake under their pseudonyms; `push_insights` sends the store the analyses of the
shoppers the lake saw there, through the IoT Core stand-in (TLS Mosquitto); the running
agent keeps those of the shopper with staff-assist consent, serves them to staff by opaque
id, dead-letters a malformed message and applies the next, and erasure deletes them."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from cloud_sync.analysis.downlink import (
    INSIGHTS_RESULTS_FILTER,
    push_insights,
    shoppers_of_store,
)
from cloud_sync.cli import main as cloud_sync
from cloud_sync.fleet.masterdata import PushOutcome, ResultCollector
from cloud_sync.lake.store import Lake
from cloud_sync.link.mqtt import connect_mqtt5
from cloud_sync.link.privacy import pseudonymize
from cloud_sync.local.broker import CLOUD_IDENTITY
from cloud_sync.local.stack import LocalCloud
from edge_agent.broker import MosquittoBroker
from tests.cloud.stores import KEY, TS, LakeWorkerProcess, provision
from tests.cloud.test_downlink_e2e import jsonl, one
from tests.ingestion.conftest import Publisher, new_id, wait_until
from tests.test_insights_store import WHEN, sample_result

pytestmark = pytest.mark.slow

STAFF_KEY = "staff-key-insights-e2e"
# C1 lets staff help them; C2 shares their sales for personalization but not with staff.
CUSTOMERS = [{"customer_id": "C1", "loyalty_number": "L0001", "consent_personalization": True,
              "consent_staff_assist": True},
             {"customer_id": "C2", "loyalty_number": "L0002", "consent_personalization": True,
              "consent_staff_assist": False}]


def test_insights_reach_the_store_for_consenting_shoppers_only_and_go_with_erasure(
        local_cloud: LocalCloud, agent_factory: Any, mosquitto_broker: MosquittoBroker,
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = "store-in-" + new_id()[:6]
    agent = agent_factory(store, provision(local_cloud, store, tmp_path / "creds"))
    agent.settings["api_keys"] = json.dumps([{"name": "staff", "role": "staff",
                                              "key": STAFF_KEY}])
    agent.start()
    wait_until(lambda: agent.readyz()[1].get("link", {}).get("state") == "connected",
               timeout=30, what="the store's link up")
    local = ["--local", str(local_cloud.directory)]
    assert cloud_sync(["master", "push", "customers", str(jsonl(tmp_path / "c.jsonl",
                                                                CUSTOMERS)),
                       "--store", store, *local]) == 0
    api = httpx.Client(base_url=f"http://127.0.0.1:{agent.port}",
                       headers={"X-API-Key": STAFF_KEY}, timeout=10)

    # Both shoppers shop here: the lake learns their pseudonyms, and this store's only.
    worker = LakeWorkerProcess(local_cloud, "lake-in-" + new_id()[:6])
    worker.start()
    lake = Lake(local_cloud.boto3_client("s3"), "instore-lake")
    till = Publisher(mosquitto_broker.host, mosquitto_broker.port)
    try:
        for customer in ("C1", "C2"):
            till.publish(f"stores/{store}/presence/app-{customer}", {
                "event_id": new_id(), "store_id": store, "ts": TS, "type": "presence",
                "customer_id": customer, "zone_id": "dairy"})
        till.flush()
        wait_until(lambda: len(shoppers_of_store(lake, store)) == 2, timeout=60,
                   what="both shoppers in the lake")
    finally:
        till.close()
        worker.stop()
    seen = shoppers_of_store(lake, store)
    assert seen == {pseudonymize(KEY, "C1"), pseudonymize(KEY, "C2")}

    collector = ResultCollector()
    cloud = local_cloud.credentials(CLOUD_IDENTITY, tmp_path / "cloud-client")
    with connect_mqtt5(cloud, "insights-" + new_id()[:6], collector.on_publish) as link:
        link.subscribe([INSIGHTS_RESULTS_FILTER])

        def push(*results: Any) -> list[dict[str, Any]]:
            sent = push_insights(link, store, results, store_shoppers=seen)
            outcome = PushOutcome("insights", sent.version, sent.batches, [store])
            collector.wait(outcome, 30)
            assert not outcome.missing(), "no result from the store"
            return [r for r in outcome.results[store] if r.get("batch_id") in sent.batches]

        # Three analyses: C1's, C2's (no staff-assist consent) and another store's shopper's.
        first = sample_result("C1", producer="fallback")
        [result] = push(first, sample_result("C2"), sample_result("C-ELSEWHERE"))
        assert (result["status"], result["stored"], result["skipped"]) == ("applied", 1, 1)
        assert one(agent.db, "SELECT group_concat(customer_id) FROM shopper_insights") == "C1"

        c1 = api.get("/v1/shoppers/lookup", params={"loyalty_number": "L0001"}).json()
        insights = api.get(f"/v1/staff/shoppers/{c1['customer_id']}/insights")
        assert insights.status_code == 200, insights.text
        analysis = insights.json()["analysis"]
        assert (analysis["producer"], analysis["fallback_reason"]) == ("fallback",
                                                                        "not configured")
        assert analysis["next_purchases"][0]["category"] == "milk"
        assert analysis["churn_risk"]["level"] == "low" and analysis["value_band"] == "high"
        assert "C1" not in insights.text and pseudonymize(KEY, "C1") not in insights.text
        c2 = api.get("/v1/shoppers/lookup", params={"loyalty_number": "L0002"}).json()
        refused = api.get(f"/v1/staff/shoppers/{c2['customer_id']}/insights")
        assert refused.status_code == 403
        assert api.get(f"/v1/staff/shoppers/{c2['customer_id']}/insights/history"
                       ).status_code == 403

        # Junk on the topic is dead-lettered with its reason; the next message is applied,
        # and the same analysis sent again is not stored twice.
        assert link.publish(f"cmd/instore/{store}/insights", b"\x00not a message")
        newer = sample_result("C1", created_at=WHEN + timedelta(days=1), churn="high")
        [result] = push(newer, first)
        assert (result["stored"], result["already"]) == (1, 1)
        assert "not zlib-compressed" in one(
            agent.db, "SELECT reason FROM dead_letters WHERE topic = ?",
            f"cmd/instore/{store}/insights")
        history = api.get(f"/v1/staff/shoppers/{c1['customer_id']}/insights/history").json()
        assert [a["producer"] for a in history["analyses"]] == ["bedrock", "fallback"]
        assert history["analyses"][0]["model_id"].startswith("us.anthropic.claude-haiku")
        newest = api.get(f"/v1/staff/shoppers/{c1['customer_id']}/insights").json()
        assert newest["analysis"]["churn_risk"]["level"] == "high"

    # Erasure from the cloud takes the shopper's analyses with them.
    key_file = tmp_path / "pseudonym.key"
    key_file.write_bytes(KEY)
    assert cloud_sync(["master", "push", "erasure",
                       str(jsonl(tmp_path / "erasure.jsonl", [{"customer_id": "C1"}])),
                       "--store", store, *local, "--pseudonym-key", str(key_file)]) == 0
    capsys.readouterr()
    assert one(agent.db, "SELECT count(*) FROM shopper_insights") == 0
    assert api.get(f"/v1/staff/shoppers/{c1['customer_id']}/insights").status_code == 404
