"""Local brokers: the embedded amqtt broker (QoS 1, persistent sessions, MQTT 3.1.1 only) and
the Mosquitto subprocess helper (sessions and queued messages survive a restart)."""

from __future__ import annotations

import argparse
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from edge_agent.broker import MosquittoBroker, find_mosquitto
from edge_agent.demo import runner as demo_runner
from edge_agent.embedded_broker import EmbeddedBroker
from edge_agent.settings import load_settings
from edge_agent.simulator.publisher import MqttPublisher
from tests.conftest import require_component

TOPIC = "stores/s1/pos/till-01"


def wait_until(predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


class Subscriber:
    """A bare paho client that records what it receives and its CONNACK."""

    def __init__(self, broker: Any, client_id: str, protocol: int = mqtt.MQTTv311) -> None:
        self.broker, self.protocol = broker, protocol
        kwargs = {"clean_session": False} if protocol == mqtt.MQTTv311 else {}
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id,
                                  protocol=protocol, **kwargs)
        self.received: list[bytes] = []
        self.connack: Any = None
        self.connected = threading.Event()
        self.client.on_connect = self._on_connect
        self.client.on_message = lambda _c, _u, msg: self.received.append(msg.payload)

    def _on_connect(self, _c: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        self.connack = reason
        if not reason.is_failure:
            self.connected.set()

    def connect(self) -> Subscriber:
        if self.protocol == mqtt.MQTTv5:
            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = 3600  # keep the session while we are away
            self.client.connect(self.broker.host, self.broker.port, clean_start=False,
                                properties=props)
        else:
            self.client.connect(self.broker.host, self.broker.port)
        self.client.loop_start()
        wait_until(lambda: self.connack is not None)
        return self

    def subscribe(self) -> None:
        done = threading.Event()
        self.client.on_subscribe = lambda *_: done.set()
        self.client.subscribe("stores/#", qos=1)
        assert done.wait(5)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def embedded() -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker(port=0) as broker:
        yield broker


def publish(broker: Any, payloads: list[bytes], protocol: int = mqtt.MQTTv311) -> None:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="pub", protocol=protocol)
    client.connect(broker.host, broker.port)
    client.loop_start()
    try:
        for payload in payloads:
            client.publish(TOPIC, payload, qos=1).wait_for_publish(5)
    finally:
        client.disconnect()
        client.loop_stop()


def test_embedded_url_and_qos1_round_trip(embedded: EmbeddedBroker) -> None:
    assert embedded.url == f"mqtt://127.0.0.1:{embedded.port}" and embedded.port > 0
    sub = Subscriber(embedded, "sub-a").connect()
    try:
        sub.subscribe()
        publish(embedded, [b"one", b"two", b"three"])
        assert wait_until(lambda: len(sub.received) == 3)
        assert sub.received == [b"one", b"two", b"three"]
    finally:
        sub.close()


def test_embedded_persistent_session_queues_qos1_while_away(embedded: EmbeddedBroker) -> None:
    sub = Subscriber(embedded, "sub-b").connect()
    sub.subscribe()
    sub.close()
    publish(embedded, [b"while-away-1", b"while-away-2"])
    back = Subscriber(embedded, "sub-b").connect()  # same client id, clean_session=False
    try:
        assert back.connected.is_set()
        assert wait_until(lambda: len(back.received) == 2)
        assert back.received == [b"while-away-1", b"while-away-2"]
    finally:
        back.close()


def test_embedded_refuses_mqtt5_and_the_publisher_speaks_311(embedded: EmbeddedBroker) -> None:
    # amqtt speaks 3.1.1 only: a plain MQTT 5 CONNECT gets "unsupported protocol version"
    # (one carrying MQTT 5 properties is simply dropped).
    refused: list[Any] = []
    v5 = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="sub-v5", protocol=mqtt.MQTTv5)
    v5.on_connect = lambda _c, _u, _f, reason, _p: refused.append(reason)
    v5.connect(embedded.host, embedded.port)
    v5.loop_start()
    try:
        assert wait_until(lambda: bool(refused))
        assert refused[0].is_failure and "protocol version" in str(refused[0]).lower()
    finally:
        v5.loop_stop()
    sub = Subscriber(embedded, "sub-c").connect()
    try:
        sub.subscribe()
        with MqttPublisher(embedded.host, embedded.port) as publisher:
            assert publisher.protocol == mqtt.MQTTv311
            publisher.publish(TOPIC, b"via-fallback")
            assert publisher.flush(5)
        assert wait_until(lambda: sub.received == [b"via-fallback"])
    finally:
        sub.close()


def test_mosquitto_restart_keeps_sessions_and_queued_messages(
        mosquitto_broker: MosquittoBroker) -> None:
    mqtt_broker = mosquitto_broker
    sub = Subscriber(mqtt_broker, "sub-d", protocol=mqtt.MQTTv5).connect()
    sub.subscribe()
    sub.close()
    publish(mqtt_broker, [b"queued-1", b"queued-2"], protocol=mqtt.MQTTv5)
    mqtt_broker.restart()
    back = Subscriber(mqtt_broker, "sub-d", protocol=mqtt.MQTTv5).connect()
    try:
        assert wait_until(lambda: len(back.received) == 2)
        assert back.received == [b"queued-1", b"queued-2"]
    finally:
        back.close()


@pytest.mark.parametrize("local_broker", ["amqtt", "mosquitto"])
def test_demo_end_to_end_on_a_local_broker(local_broker: str, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    """`edge-agent demo` with no broker configured: the agent ingests history and live traffic
    through the broker the demo starts (amqtt: the agent falls back to MQTT 3.1.1)."""
    if local_broker == "mosquitto":
        require_component("mosquitto", find_mosquitto() is not None, "apt-get install mosquitto")
    parser = argparse.ArgumentParser()
    demo_runner.add_arguments(parser)
    args = parser.parse_args(["--local-broker", local_broker, "--duration", "0.5",
                              "--history-days", "2", "--shoppers", "30", "--rate", "100"])
    db_path = tmp_path / "edge.db"
    assert demo_runner.run_demo(load_settings(store_id="demo-t", db=db_path), args) == 0
    out = capsys.readouterr().out
    assert local_broker in out and str(db_path) in out
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("SELECT count(*) FROM products").fetchone()[0] == 3000
        assert conn.execute("SELECT count(*) FROM customers").fetchone()[0] == 30
        stored = dict(conn.execute("SELECT type, count(*) FROM events GROUP BY type").fetchall())
        assert conn.execute("SELECT count(*) FROM dead_letters").fetchone()[0] == 0
    assert stored.get("pos.transaction", 0) > 10  # two days of history at least
    assert stored.get("shelf.reading", 0) > 0
