"""Crashes and restarts lose nothing: kill -9 of the agent, of its writer, broker restarts."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge_agent.agent import Agent
from edge_agent.broker import MosquittoBroker, MosquittoConfig, find_mosquitto, free_port
from edge_agent.settings import load_settings
from tests.conftest import require_component
from tests.ingestion.conftest import STORE, Publisher, count, pos_event, wait_until

# Enough events that the kill lands mid-stream, few enough to keep the test to seconds.
STREAM_EVENTS = 3000
PUBLISH_PAUSE_EVERY = 100
PUBLISH_PAUSE_S = 0.02


def _publish_stream(publisher: Publisher, events: list[dict]) -> threading.Thread:
    def run() -> None:
        for n, event in enumerate(events):
            publisher.event(event)
            if n % PUBLISH_PAUSE_EVERY == 0:
                time.sleep(PUBLISH_PAUSE_S)  # a steady stream, not one burst
        publisher.flush()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def _start_agent_process(broker: MosquittoBroker, db_path: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "edge_agent.cli", "run", "--store-id", STORE,
         "--broker", broker.url, "--db", str(db_path), "--port", str(free_port()),
         "--log-level", "WARNING"],
        stdin=subprocess.DEVNULL)


def _stored_exactly_once(db_path: Path, events: list[dict]) -> None:
    assert count(db_path, "SELECT count(*) FROM events") == len(events)
    assert count(db_path, "SELECT count(*) FROM transactions") == len(events)
    assert count(db_path, "SELECT count(*) FROM transaction_items") == 2 * len(events)
    assert count(db_path, "SELECT count(DISTINCT event_id) FROM events") == len(events)


def _session_exists(broker: MosquittoBroker, db_path: Path) -> None:
    """Run the agent once so the broker holds its persistent session from the start."""
    settings = load_settings(store_id=STORE, broker=broker.url, db=db_path)
    with Agent(settings) as agent:
        assert agent.ingestion.wait_connected(10)


def test_kill_9_of_the_agent_mid_stream_then_restart_stores_every_event_once(
        mosquitto_broker: MosquittoBroker, db_path: Path) -> None:
    # Mosquitto: amqtt does not redeliver what a client received but had not acked.
    mqtt_broker = mosquitto_broker
    publisher = Publisher(mqtt_broker.host, mqtt_broker.port)
    _session_exists(mqtt_broker, db_path)
    events = [pos_event() for _ in range(STREAM_EVENTS)]
    agent = _start_agent_process(mqtt_broker, db_path)
    try:
        stream = _publish_stream(publisher, events)
        wait_until(lambda: count(db_path, "SELECT count(*) FROM events") > 200,
                   what="the agent to store part of the stream")
        agent.send_signal(signal.SIGKILL)
        agent.wait(10)
        stored_at_kill = count(db_path, "SELECT count(*) FROM events")
        assert stored_at_kill < STREAM_EVENTS, "kill landed after the stream; nothing tested"
        agent = _start_agent_process(mqtt_broker, db_path)
        stream.join(60)
        wait_until(lambda: count(db_path, "SELECT count(*) FROM events") >= STREAM_EVENTS,
                   timeout=60, what="every event after the restart")
        time.sleep(0.5)  # any redelivered duplicate would have landed by now
        _stored_exactly_once(db_path, events)
    finally:
        agent.terminate()
        agent.wait(10)
        publisher.close()


def test_writer_process_killed_mid_stream_is_restarted_and_nothing_is_lost(
        agent: Agent, publisher: Publisher, db_path: Path) -> None:
    events = [pos_event() for _ in range(STREAM_EVENTS)]
    stream = _publish_stream(publisher, events)
    wait_until(lambda: count(db_path, "SELECT count(*) FROM events") > 200,
               what="part of the stream")
    writer_pid = agent.ingestion.writer_pid
    assert writer_pid is not None
    os.kill(writer_pid, signal.SIGKILL)
    stream.join(60)
    wait_until(lambda: count(db_path, "SELECT count(*) FROM events") >= STREAM_EVENTS,
               timeout=60, what="every event after the writer restart")
    assert agent.ingestion.writer_pid != writer_pid
    _stored_exactly_once(db_path, events)


@pytest.fixture
def agent_on_mosquitto(mosquitto_broker: MosquittoBroker, db_path: Path) -> Iterator[Agent]:
    settings = load_settings(store_id=STORE, broker=mosquitto_broker.url, db=db_path,
                             batch_max_wait_ms=5)
    with Agent(settings) as running:
        assert running.ingestion.wait_connected(10)
        yield running


def test_broker_restart_mid_stream_resumes_with_nothing_lost(
        mosquitto_broker: MosquittoBroker, agent_on_mosquitto: Agent, db_path: Path) -> None:
    # Mosquitto: the embedded broker keeps sessions in memory only.
    mqtt_broker, agent = mosquitto_broker, agent_on_mosquitto
    publisher = Publisher(mqtt_broker.host, mqtt_broker.port)
    before = [pos_event() for _ in range(500)]
    after = [pos_event() for _ in range(500)]
    for event in before:
        publisher.event(event)
    publisher.flush()
    mqtt_broker.restart()
    # A till waits for its broker to come back before sending more.
    wait_until(publisher.client.is_connected, timeout=30, what="publisher reconnect")
    for event in after:
        publisher.event(event)
    publisher.flush(timeout=60)
    wait_until(lambda: count(db_path, "SELECT count(*) FROM events") >= 1000, timeout=60,
               what="all events across the broker restart")
    _stored_exactly_once(db_path, before + after)
    assert agent.metrics.registry.get_sample_value("edge_mqtt_connects_total") >= 2
    publisher.close()


@pytest.fixture
def broker_without_persistence(tmp_path: Path) -> Iterator[MosquittoBroker]:
    require_component("mosquitto", find_mosquitto() is not None, "apt-get install mosquitto")
    broker = MosquittoBroker(config_dir=tmp_path / "volatile",
                             config=MosquittoConfig(persistence=False))
    broker.start()
    yield broker
    broker.close()


def test_agent_resubscribes_after_a_broker_that_forgot_its_session(
        broker_without_persistence: MosquittoBroker, db_path: Path) -> None:
    broker = broker_without_persistence
    settings = load_settings(store_id=STORE, broker=broker.url, db=db_path)
    with Agent(settings) as agent:
        assert agent.ingestion.wait_connected(10)
        broker.restart()  # every session and subscription is gone
        wait_until(lambda: agent.ingestion.connected
                   and agent.metrics.registry.get_sample_value("edge_mqtt_connects_total") >= 2,
                   timeout=30, what="reconnect")
        publisher = Publisher(broker.host, broker.port)
        try:
            event = pos_event()
            publisher.event(event)
            publisher.flush()
            wait_until(lambda: count(db_path, "SELECT count(*) FROM events") == 1,
                       what="an event after the resubscription")
        finally:
            publisher.close()
