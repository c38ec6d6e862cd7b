"""`edge-agent run --workers 2`: ingestion in the agent process, HTTP in two worker processes
on one port. Run as an operator would: a real process, a real broker, real HTTP."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from edge_agent.broker import MosquittoBroker, free_port, wait_for_port
from tests.api.conftest import KEYS, drop_bundle, seed_catalog
from tests.ingestion.conftest import (
    STORE,
    Publisher,
    count,
    pos_event,
    stop_agent_process,
    wait_until,
)
from tests.model_bundles import Bundles
from tests.shopper_ids import device_shopper_id

WORKERS = 2


@dataclass
class RunningAgent:
    process: subprocess.Popen[bytes]
    url: str
    db_path: Path
    port: int

    def get(self, path: str, role: str | None = "kiosk") -> httpx.Response:
        # A new connection per call, so the calls spread over the workers.
        headers = {"X-API-Key": KEYS[role]} if role else {}
        return httpx.get(self.url + path, headers=headers, timeout=10)

    def post(self, path: str, body: object, role: str = "kiosk") -> httpx.Response:
        return httpx.post(self.url + path, json=body, headers={"X-API-Key": KEYS[role]},
                          timeout=10)

    def served_versions(self) -> dict[str, str]:
        """pid → the model version that worker serves, from `/metrics`."""
        served = {}
        for line in self.get("/metrics", role=None).text.splitlines():
            if line.startswith("edge_model_version_info{") and line.endswith(" 1.0"):
                labels = dict(re.findall(r'(\w+)="([^"]*)"', line))
                served[labels["pid"]] = labels["version"]
        return served


@pytest.fixture
def agent(mqtt_broker: MosquittoBroker, tmp_path: Path, bundles: Bundles
          ) -> Iterator[RunningAgent]:
    db_path = tmp_path / "edge.db"
    port = free_port()
    env = {**os.environ, "EDGE_API_KEYS": json.dumps(
        [{"name": f"test-{role}", "role": role, "key": key} for role, key in KEYS.items()]),
        "EDGE_MODEL_PUBLIC_KEY": str(bundles.public_key), "EDGE_MODEL_BUNDLE": str(bundles.v1),
        "EDGE_MQTT_PROTOCOL": mqtt_broker.mqtt_protocol, "EDGE_BATCH_MAX_WAIT_MS": "5",
        "EDGE_MODEL_BUNDLE_DIR": str(tmp_path / "incoming"), "EDGE_MODEL_WATCH_INTERVAL_S": "0.5"}
    process = subprocess.Popen(
        [sys.executable, "-m", "edge_agent.cli", "run", "--store-id", STORE, "--broker",
         mqtt_broker.url, "--db", str(db_path), "--port", str(port), "--workers", str(WORKERS),
         "--log-level", "WARNING"], env=env, stdin=subprocess.DEVNULL)
    try:
        assert wait_for_port("127.0.0.1", port, timeout=60), "the agent did not listen"
        running = RunningAgent(process, f"http://127.0.0.1:{port}", db_path, port)
        wait_until(lambda: len(running.served_versions()) == WORKERS, timeout=60,
                   what="both workers serving")
        seed_catalog(db_path)
        yield running
    finally:
        if not stop_agent_process(process):
            pytest.fail("the agent did not stop on SIGTERM")


def test_workers_answer_from_what_the_agent_process_ingests(agent: RunningAgent,
                                                            mqtt_broker: MosquittoBroker) -> None:
    wait_until(lambda: agent.get("/readyz", role=None).status_code == 200, timeout=30,
               what="ready: broker connected (seen through the agent process's status)")
    publisher = Publisher(mqtt_broker.host, mqtt_broker.port, mqtt_broker.mqtt_protocol)
    try:
        for _ in range(3):
            publisher.event(pos_event(customer_id="C-WEEKLY", items=[
                {"product_id": "MILK", "quantity": 1, "unit_price": 1.1}], total=1.1))
        publisher.flush()  # acknowledged by the broker before the publisher disconnects
    finally:
        publisher.close()
    wait_until(lambda: count(agent.db_path, "SELECT count(*) FROM events") == 3, timeout=30,
               what="sales")
    for _ in range(4):  # whichever worker answers
        response = agent.get(
            f"/v1/shoppers/{device_shopper_id(agent.db_path, 'C-WEEKLY')}/recommendations")
        assert response.status_code == 200
        assert response.json()["personalized"] is True
    # The agent process's ingest counters and the workers' latencies, in one exposition.
    text = agent.get("/metrics", role=None).text
    assert 'edge_events_ingested_total{type="pos.transaction"} 3.0' in text
    # The workers share one memo: the shopper's ranking was computed once, not per worker.
    assert 'edge_shopper_memo_lookups_total{kind="ranking",result="miss"} 1.0' in text
    assert 'edge_shopper_memo_lookups_total{kind="ranking",result="hit"} 3.0' in text
    assert re.search(r'edge_http_request_seconds_count\{method="GET",'
                     r'route="/v1/shoppers/\{customer_id\}/recommendations",status="200"\} 4\.0',
                     text)


def test_feedback_through_a_worker_is_committed_before_201(agent: RunningAgent) -> None:
    response = agent.post("/v1/feedback", {"device_id": "kiosk-1", "action": "click",
                                           "product_id": "MILK", "customer_id": "C-WEEKLY",
                                           "event_id": "fb-worker-1"})
    assert response.status_code == 201
    assert count(agent.db_path, "SELECT count(*) FROM interactions WHERE event_id ="
                                " 'fb-worker-1'") == 1


def test_a_bundle_loaded_through_one_worker_reaches_every_worker(agent: RunningAgent,
                                                                 bundles: Bundles) -> None:
    assert set(agent.served_versions().values()) == {"test-1"}
    name = drop_bundle(bundles.v2, agent.db_path.parent / "incoming")
    response = agent.post("/v1/admin/models/load", {"path": name}, role="admin")
    assert response.status_code == 200
    wait_until(lambda: set(agent.served_versions().values()) == {"test-2"}, timeout=15,
               what="every worker serving test-2")
    assert agent.post("/v1/admin/models/rollback", {}, role="admin").status_code == 200
    wait_until(lambda: set(agent.served_versions().values()) == {"test-1"}, timeout=15,
               what="every worker back on test-1")


def test_a_bundle_dropped_after_an_admin_load_wins_on_every_worker(
        agent: RunningAgent, bundles: Bundles, tmp_path: Path) -> None:
    incoming = agent.db_path.parent / "incoming"
    assert agent.post("/v1/admin/models/load", {"path": str(incoming / drop_bundle(
        bundles.v2, incoming))}, role="admin").status_code == 200
    wait_until(lambda: set(agent.served_versions().values()) == {"test-2"}, timeout=15,
               what="every worker serving test-2")
    drop_bundle(bundles.build(tmp_path / "v3", "test-3"), incoming)
    wait_until(lambda: set(agent.served_versions().values()) == {"test-3"}, timeout=15,
               what="every worker serving the dropped test-3")
    time.sleep(3)  # the workers follow each other every second: nobody goes back to test-2
    assert set(agent.served_versions().values()) == {"test-3"}


def test_a_worker_that_dies_is_replaced(agent: RunningAgent) -> None:
    victim = next(iter(agent.served_versions()))
    os.kill(int(victim), signal.SIGKILL)
    wait_until(lambda: victim not in agent.served_versions()
               and len(agent.served_versions()) == WORKERS, timeout=30,
               what="a new worker in place of the killed one")
    assert agent.get("/v1/trending").status_code == 200


def test_workers_stop_when_the_agent_process_is_killed(agent: RunningAgent) -> None:
    """An orphaned worker would keep the port: the agent, restarted, could not listen."""
    agent.process.kill()
    agent.process.wait()

    def port_free() -> bool:
        try:
            socket.create_server(("127.0.0.1", agent.port)).close()
        except OSError:
            return False
        return True

    wait_until(port_free, timeout=20, what="the workers to let go of the port")
