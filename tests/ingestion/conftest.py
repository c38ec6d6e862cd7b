"""Fixtures for ingestion tests: a running agent on a real broker, a publisher, event makers."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import paho.mqtt.client as mqtt
import pytest

from edge_agent.agent import Agent
from edge_agent.broker import MosquittoBroker, MosquittoConfig, find_mosquitto
from edge_agent.broker_auth import StoreBrokerConfig, write_store_broker_config
from edge_agent.settings import load_settings
from tests.conftest import require_component

STORE = "store-t1"
TS = "2026-11-21T09:30:00Z"


def wait_until(predicate: Callable[[], bool], timeout: float = 15.0,
               what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def stop_agent_process(process: subprocess.Popen[bytes], timeout: float = 30) -> bool:
    """SIGTERM, as systemd stops it; False if it had to be killed."""
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        return False
    return True


def count(db_path: Path, sql: str, *params: Any) -> int:
    with sqlite3.connect(db_path) as conn:
        return conn.execute(sql, params).fetchone()[0]


def rows(db_path: Path, sql: str, *params: Any) -> list[sqlite3.Row]:
    conn = sqlite3.connect(db_path)
    conn.row_factory = sqlite3.Row
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def consenting_shopper(db_path: Path, customer_id: str) -> None:
    """A loyalty member who consented to personalization: their features, presence and
    clicks are kept (everyone else's are not)."""
    with sqlite3.connect(db_path) as conn:
        conn.execute("INSERT OR REPLACE INTO customers (customer_id, consent_personalization)"
                     " VALUES (?, 1)", (customer_id,))


def new_id() -> str:
    return str(uuid.uuid4())


def pos_event(**overrides: Any) -> dict[str, Any]:
    event = {"event_id": new_id(), "store_id": STORE, "ts": TS, "type": "pos.transaction",
             "transaction_id": "T-" + new_id(), "customer_id": "C00001",
             "items": [{"product_id": "P000001", "quantity": 2, "unit_price": 1.25,
                        "discount": 0.0},
                       {"product_id": "P000777", "quantity": 1, "unit_price": 3.5,
                        "discount": 0.5}],
             "total": 5.5}
    event.update(overrides)
    return event


def shelf_event(**overrides: Any) -> dict[str, Any]:
    event = {"event_id": new_id(), "store_id": STORE, "ts": TS, "type": "shelf.reading",
             "product_id": "P000001", "quantity": 3, "capacity": 24}
    event.update(overrides)
    return event


def zone_event(**overrides: Any) -> dict[str, Any]:
    event = {"event_id": new_id(), "store_id": STORE, "ts": TS, "type": "zone.traffic",
             "people": 7, "avg_dwell_s": 42.5}
    event.update(overrides)
    return event


def presence_event(**overrides: Any) -> dict[str, Any]:
    event = {"event_id": new_id(), "store_id": STORE, "ts": TS, "type": "presence",
             "customer_id": "C00001", "zone_id": "dairy"}
    event.update(overrides)
    return event


def interaction_event(**overrides: Any) -> dict[str, Any]:
    event = {"event_id": new_id(), "store_id": STORE, "ts": TS, "type": "interaction",
             "customer_id": "C00001", "action": "click", "product_id": "P000001",
             "context": "kiosk", "model_version": "ranker-1"}
    event.update(overrides)
    return event


TOPIC_BY_TYPE = {"pos.transaction": f"stores/{STORE}/pos/till-1",
                 "shelf.reading": f"stores/{STORE}/shelf/shelf-A1",
                 "zone.traffic": f"stores/{STORE}/zone/dairy",
                 "presence": f"stores/{STORE}/presence/cart-9",
                 "interaction": f"stores/{STORE}/interaction/kiosk-2"}


class Publisher:
    """A plain paho QoS 1 publisher, as a till or sensor gateway would be."""

    def __init__(self, host: str, port: int, protocol: str = "5") -> None:
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2,
                                  client_id=f"test-pub-{new_id()[:8]}",
                                  protocol=mqtt.MQTTv5 if protocol == "5" else mqtt.MQTTv311)
        self.client.reconnect_delay_set(1, 2)
        self.client.max_queued_messages_set(0)
        self.client.max_inflight_messages_set(1000)
        self.client.connect(host, port)
        self.client.loop_start()
        self._pending: list[mqtt.MQTTMessageInfo] = []

    def publish(self, topic: str, payload: bytes | dict[str, Any]) -> None:
        data = orjson.dumps(payload) if isinstance(payload, dict) else payload
        self._pending.append(self.client.publish(topic, data, qos=1))

    def event(self, event: dict[str, Any]) -> None:
        self.publish(TOPIC_BY_TYPE[event["type"]], event)

    def flush(self, timeout: float = 30.0) -> None:
        for info in self._pending:
            info.wait_for_publish(timeout)
        self._pending.clear()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "edge.db"


@pytest.fixture
def publisher(mqtt_broker: Any) -> Iterator[Publisher]:
    pub = Publisher(mqtt_broker.host, mqtt_broker.port, mqtt_broker.mqtt_protocol)
    yield pub
    pub.close()


@pytest.fixture
def agent(mqtt_broker: Any, db_path: Path) -> Iterator[Agent]:
    settings = load_settings(store_id=STORE, broker=mqtt_broker.url, db=db_path,
                             batch_max_wait_ms=5, mqtt_protocol=mqtt_broker.mqtt_protocol)
    with Agent(settings) as running:
        assert running.ingestion.wait_connected(10), "agent did not connect"
        yield running


@dataclass
class StoreBroker:
    """Mosquitto closed as the documented store setup is: accounts per device class, an ACL."""

    broker: MosquittoBroker
    accounts: StoreBrokerConfig


@pytest.fixture
def store_broker(tmp_path: Path) -> Iterator[StoreBroker]:
    require_component("mosquitto", find_mosquitto() is not None, "apt-get install mosquitto")
    accounts = write_store_broker_config(STORE, tmp_path / "broker-accounts")
    config = MosquittoConfig(password_file=accounts.password_file, acl_file=accounts.acl_file)
    with MosquittoBroker(config_dir=tmp_path / "mosquitto-auth", config=config) as broker:
        yield StoreBroker(broker, accounts)


@pytest.fixture
def authenticated_agent(store_broker: StoreBroker, db_path: Path) -> Iterator[Agent]:
    """An agent logged in to `store_broker` with its own account (read-only)."""
    account = store_broker.accounts.account("agent")
    settings = load_settings(store_id=STORE, broker=store_broker.broker.url, db=db_path,
                             batch_max_wait_ms=5, mqtt_username=account.username,
                             mqtt_password=account.password)
    with Agent(settings) as running:
        assert running.ingestion.wait_connected(10), "agent did not connect"
        yield running
