"""`edge-agent broker-config` writes a setup that a real Mosquitto runs as written: the
till's account publishes its sales and nothing else, the agent's reads them, no one else
gets in."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest

from edge_agent.broker import find_mosquitto, free_port, wait_for_port
from edge_agent.broker_auth import load_store_broker_config
from edge_agent.cli import main
from tests.conftest import require_component

STORE = "store-042"


def client(port: int, username: str | None, password: str | None) -> tuple[mqtt.Client, Any]:
    """A connected (or refused) client and the CONNACK's reason code."""
    answered = threading.Event()
    reason: list[Any] = []
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    if username:
        c.username_pw_set(username, password)
    c.on_connect = lambda _c, _u, _f, rc, _p: (reason.append(rc), answered.set())
    c.connect("127.0.0.1", port)
    c.loop_start()
    assert answered.wait(10)
    return c, reason[0]


def test_the_generated_setup_runs_in_mosquitto(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    require_component("mosquitto", find_mosquitto() is not None, "apt-get install mosquitto")
    port = free_port()
    out = tmp_path / "edge-store"
    assert main(["broker-config", "--store", STORE, "--out", str(out), "--port", str(port),
                 "--bind", "127.0.0.1"]) == 0
    printed = capsys.readouterr().out
    config = load_store_broker_config(out)
    assert {a.device_class for a in config.accounts} == {
        "pos", "shelf", "zone", "presence", "interaction", "agent"}
    for account in config.accounts:
        assert account.username in printed and account.password not in printed
    assert os.stat(out / "credentials.json").st_mode & 0o077 == 0
    conf = (out / "mosquitto.conf").read_text()
    if os.geteuid() == 0:  # as in edge_agent/broker.py: keep root's access to the files
        conf += "user root\n"
    (tmp_path / "run.conf").write_text(conf)
    binary = find_mosquitto()
    assert binary is not None
    broker = subprocess.Popen([binary, "-c", str(tmp_path / "run.conf")],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert wait_for_port("127.0.0.1", port), "mosquitto did not start with the config"
        _, anonymous = client(port, None, None)
        assert anonymous.is_failure
        agent = config.account("agent")
        reader, accepted = client(port, agent.username, agent.password)
        assert not accepted.is_failure
        got: list[str] = []
        subscribed = threading.Event()
        reader.on_message = lambda _c, _u, m: got.append(m.topic)
        reader.on_subscribe = lambda *_: subscribed.set()
        reader.subscribe(f"stores/{STORE}/+/+", qos=1)
        assert subscribed.wait(5)
        till = config.account("pos")
        writer, accepted = client(port, till.username, till.password)
        assert not accepted.is_failure
        writer.publish(f"stores/{STORE}/pos/till-1", b"{}", qos=1).wait_for_publish(5)
        writer.publish(f"stores/{STORE}/shelf/s-1", b"{}", qos=1).wait_for_publish(5)
        time.sleep(0.5)  # the shelf reading would have arrived by now
        assert got == [f"stores/{STORE}/pos/till-1"]
        for c in (reader, writer):
            c.disconnect()
            c.loop_stop()
    finally:
        broker.terminate()
        broker.wait(10)


def test_a_bad_store_id_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["broker-config", "--store", "store/#", "--out", str(tmp_path / "x")]) == 2
    assert "store:" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
