"""The simulator on a store broker set up as documented (`edge-agent broker-config`): it logs
in per device class and every message it publishes gets through the ACL; without the
accounts the broker refuses it. Real Mosquitto."""

from __future__ import annotations

import argparse
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest

from edge_agent.broker import MosquittoBroker, MosquittoConfig, find_mosquitto
from edge_agent.broker_auth import StoreBrokerConfig, write_store_broker_config
from edge_agent.settings import load_settings
from edge_agent.simulator import cli
from models.events import parse_topic
from tests.conftest import require_component

STORE = "store-sim"
ALL_TYPES = {"pos.transaction", "shelf.reading", "zone.traffic", "presence", "interaction"}


@pytest.fixture
def store_broker(tmp_path: Path) -> Iterator[tuple[MosquittoBroker, StoreBrokerConfig]]:
    require_component("mosquitto", find_mosquitto() is not None, "apt-get install mosquitto")
    accounts = write_store_broker_config(STORE, tmp_path / "accounts")
    config = MosquittoConfig(password_file=accounts.password_file, acl_file=accounts.acl_file)
    with MosquittoBroker(config_dir=tmp_path / "mosquitto", config=config) as broker:
        yield broker, accounts


def run_simulator(broker: MosquittoBroker, *flags: str,
                  capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    code = cli.run(load_settings(store_id=STORE, broker=broker.url),
                   parser.parse_args(list(flags)))
    return code, capsys.readouterr().out


def test_the_simulator_publishes_every_class_with_its_own_account(
        store_broker: tuple[MosquittoBroker, StoreBrokerConfig],
        capsys: pytest.CaptureFixture[str]) -> None:
    broker, accounts = store_broker
    agent = accounts.account("agent")
    received: list[str] = []
    subscribed = threading.Event()
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.username_pw_set(agent.username, agent.password)
    client.on_connect = lambda c, *_: c.subscribe(f"stores/{STORE}/+/+", qos=1)
    client.on_subscribe = lambda *_: subscribed.set()

    def on_message(_c: Any, _u: Any, message: mqtt.MQTTMessage) -> None:
        received.append(message.topic)

    client.on_message = on_message
    client.connect(broker.host, broker.port)
    client.loop_start()
    try:
        assert subscribed.wait(5)
        code, out = run_simulator(broker, "--rate", "400", "--duration", "1.5", "--shoppers",
                                  "50", "--broker-accounts", str(accounts.directory),
                                  capsys=capsys)
        time.sleep(0.5)  # the last deliveries
    finally:
        client.disconnect()
        client.loop_stop()
    assert code == 0, out
    found = re.search(r"live (\d+) events", out)
    assert found, out
    assert {parse_topic(t).event_type for t in received} == ALL_TYPES
    # Every message got through the ACL, none dropped: each went on its class's login.
    assert len(received) == int(found.group(1)) > 300, out


def test_the_simulator_without_accounts_is_refused(
        store_broker: tuple[MosquittoBroker, StoreBrokerConfig],
        capsys: pytest.CaptureFixture[str]) -> None:
    broker, _ = store_broker
    code, out = run_simulator(broker, "--duration", "0.2", capsys=capsys)
    assert code == 1 and "refused the connection" in out, out
