"""The store broker set up as documented (`edge-agent broker-config`): only the accounts in
its password file connect, each device class publishes only under its own topic, and the
agent logs in with its own read-only account. Real Mosquitto, a real agent."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
import paho.mqtt.client as mqtt
import pytest

from edge_agent.agent import Agent
from edge_agent.broker import free_port, wait_for_port
from edge_agent.broker_auth import DEVICE_CLASSES, verify_password
from tests.ingestion.conftest import (
    STORE,
    TOPIC_BY_TYPE,
    StoreBroker,
    count,
    interaction_event,
    pos_event,
    presence_event,
    shelf_event,
    stop_agent_process,
    wait_until,
    zone_event,
)

EVENT_BY_CLASS = {"pos": pos_event, "shelf": shelf_event, "zone": zone_event,
                  "presence": presence_event, "interaction": interaction_event}
# After a sale published later on the same broker is stored, anything refused earlier would
# have been stored too if the broker had passed it on: the agent commits in arrival order.
SETTLE_S = 0.5
NOT_AUTHORIZED = 0x87  # MQTT 5 reason code in the PUBACK of a publish the ACL refuses


def topic_of(event: dict[str, Any]) -> str:
    return TOPIC_BY_TYPE[event["type"]]


def stored(db_path: Path, event: dict[str, Any]) -> bool:
    return count(db_path, "SELECT count(*) FROM events WHERE event_id = ?",
                 event["event_id"]) == 1


class Device:
    """A till or sensor: a paho client that logs in (or not) and publishes at QoS 1."""

    def __init__(self, broker: StoreBroker, username: str | None = None,
                 password: str | None = None) -> None:
        self.refused: Any = None
        self.accepted = False
        self.acks: dict[int, Any] = {}  # packet id → the PUBACK's reason code (MQTT 5)
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        if username is not None:
            self.client.username_pw_set(username, password)
        self.client.on_connect = self._on_connect
        self.client.on_publish = lambda _c, _u, mid, reason, _p: self.acks.update({mid: reason})
        self.client.connect(broker.broker.host, broker.broker.port)
        self.client.loop_start()
        wait_until(lambda: self.accepted or self.refused is not None, 10, "a CONNACK")

    def _on_connect(self, _c: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            self.refused = reason
        else:
            self.accepted = True

    def publish(self, event: dict[str, Any], topic: str | None = None) -> Any:
        """Publish and wait for the PUBACK; its reason code."""
        info = self.client.publish(topic or topic_of(event), orjson.dumps(event), qos=1)
        info.wait_for_publish(10)
        return self.acks[info.mid]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def device(broker: StoreBroker, device_class: str) -> Device:
    account = broker.accounts.account(device_class)
    return Device(broker, account.username, account.password)


def test_the_password_file_is_mosquittos_pbkdf2_format(store_broker: StoreBroker) -> None:
    lines = store_broker.accounts.password_file.read_text().splitlines()
    entries = dict(line.split(":", 1) for line in lines)
    for account in store_broker.accounts.accounts:
        assert entries[account.username].startswith("$7$")
        assert verify_password(account.password, entries[account.username])
        assert account.password not in store_broker.accounts.password_file.read_text()
        assert account.password not in repr(account)
    assert os.stat(store_broker.accounts.password_file).st_mode & 0o077 == 0


@pytest.mark.parametrize("username", [None, f"{STORE}-pos", "someone"],
                         ids=["anonymous", "wrong-password", "unknown-user"])
def test_a_device_without_valid_credentials_is_refused_and_nothing_is_stored(
        store_broker: StoreBroker, authenticated_agent: Agent, db_path: Path,
        username: str | None) -> None:
    intruder = Device(store_broker, username, None if username is None else "not-the-password")
    assert intruder.refused is not None and not intruder.accepted
    assert intruder.refused.value in (0x86, NOT_AUTHORIZED), intruder.refused
    fake = pos_event(customer_id="C00099")
    intruder.client.publish(topic_of(fake), orjson.dumps(fake), qos=1)
    intruder.close()
    till = device(store_broker, "pos")
    sale = pos_event()
    till.publish(sale)
    till.close()
    wait_until(lambda: stored(db_path, sale), what="the till's sale")
    time.sleep(SETTLE_S)
    assert not stored(db_path, fake)


@pytest.mark.parametrize("device_class", list(DEVICE_CLASSES))
def test_each_device_class_publishes_under_its_own_topic_only(
        store_broker: StoreBroker, authenticated_agent: Agent, db_path: Path,
        device_class: str) -> None:
    client = device(store_broker, device_class)
    assert client.accepted
    # Its own, on its own topic: stored by the agent (consent rules aside).
    own = EVENT_BY_CLASS[device_class]()
    assert not client.publish(own).is_failure
    # Another class's reading on that class's topic: the broker refuses it (Mosquitto then
    # drops the connection too).
    other_class = "shelf" if device_class != "shelf" else "pos"
    forged = EVENT_BY_CLASS[other_class]()
    assert client.publish(forged).value == NOT_AUTHORIZED
    client.close()
    barrier = pos_event()
    till = device(store_broker, "pos")
    till.publish(barrier)
    till.close()
    wait_until(lambda: stored(db_path, barrier), what="the till's sale")
    time.sleep(SETTLE_S)
    assert not stored(db_path, forged)
    if device_class in ("pos", "shelf", "zone"):  # no shopper: no consent rule applies
        assert stored(db_path, own)


def test_the_agent_account_cannot_publish(store_broker: StoreBroker,
                                          authenticated_agent: Agent, db_path: Path) -> None:
    agent_account = store_broker.accounts.account("agent")
    impostor = Device(store_broker, agent_account.username, agent_account.password)
    fake = pos_event()
    assert impostor.publish(fake).value == NOT_AUTHORIZED
    impostor.close()
    barrier = pos_event()
    till = device(store_broker, "pos")
    till.publish(barrier)
    till.close()
    wait_until(lambda: stored(db_path, barrier), what="the till's sale")
    time.sleep(SETTLE_S)
    assert not stored(db_path, fake)


def test_a_wrong_agent_password_is_a_clear_not_ready_state(store_broker: StoreBroker,
                                                           tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "agent.log"
    env = {**os.environ, "EDGE_MQTT_USERNAME": f"{STORE}-agent",
           "EDGE_MQTT_PASSWORD": "not-the-agents-password"}
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "edge_agent.cli", "run", "--store-id", STORE,
             "--broker", store_broker.broker.url, "--db", str(tmp_path / "edge.db"),
             "--port", str(port)], env=env, stdin=subprocess.DEVNULL, stdout=out,
            stderr=subprocess.STDOUT)
    try:
        assert wait_for_port("127.0.0.1", port, timeout=60), "the agent did not listen"
        url = f"http://127.0.0.1:{port}"
        wait_until(lambda: b"refused the connection" in log.read_bytes(), 20, "the refusal")
        ready = httpx.get(f"{url}/readyz", timeout=10)
        assert ready.status_code == 503 and ready.json()["checks"]["broker"] is False
        assert ready.json()["broker_refused"] in ("Not authorized", "Bad user name or password")
        assert httpx.get(f"{url}/healthz", timeout=10).status_code == 200
        text = log.read_text()
        # Mosquitto 2.0 answers a wrong password with "Not authorized" (MQTT 5's 0x87).
        assert any(reason in text for reason in ("Not authorized", "Bad user name or password"))
        assert "check mqtt_username and mqtt_password" in text
        assert "not-the-agents-password" not in text
        assert process.poll() is None, "a wrong password must not end the agent"
    finally:
        assert stop_agent_process(process)
