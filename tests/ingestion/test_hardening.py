"""Edge hardening: no message can stop ingestion, no far-off timestamp can freeze state, no
till retry counts twice, a full disk loses nothing acknowledged. Through the real broker and
the real agent, run both ways an operator runs it: one process (`--workers 1`, the app's
lifespan) and `edge-agent run --workers 2` (the agent process beside two HTTP workers)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from edge_agent.api.app import create_app
from edge_agent.broker import MosquittoBroker, free_port, wait_for_port
from edge_agent.settings import load_settings
from models.events import format_ts
from tests.ingestion.conftest import (
    STORE,
    Publisher,
    consenting_shopper,
    count,
    pos_event,
    presence_event,
    rows,
    shelf_event,
    stop_agent_process,
    wait_until,
    zone_event,
)

POISON_TIMESTAMPS = ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00",
                     "0999-06-01T00:00:00Z", "2099-01-01T00:00:00Z", "1970-01-01T00:00:00Z"]


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


@dataclass
class StoreAgent:
    """An agent run as an operator runs it, with what the tests look at."""

    db_path: Path
    readyz: Any  # () -> (status code, body)


@pytest.fixture(params=["workers-1", "workers-2"])
def store_agent(request: pytest.FixtureRequest, mosquitto_broker: MosquittoBroker,
                tmp_path: Path) -> Iterator[StoreAgent]:
    yield from _run_agent(request.param, mosquitto_broker, tmp_path / "edge.db")


def _run_agent(mode: str, broker: MosquittoBroker, db_path: Path,
               **settings: Any) -> Iterator[StoreAgent]:
    if mode == "workers-1":
        app = create_app(load_settings(store_id=STORE, broker=broker.url, db=db_path,
                                       batch_max_wait_ms=5, **settings))
        with TestClient(app) as client:
            wait_until(lambda: app.state.serving.agent.connected, what="agent subscribed")

            def readyz() -> tuple[int, dict[str, Any]]:
                response = client.get("/readyz")
                return response.status_code, response.json()

            yield StoreAgent(db_path, readyz)
        return
    port = free_port()
    env = {**os.environ, "EDGE_BATCH_MAX_WAIT_MS": "5",
           **{f"EDGE_{name.upper()}": str(value) for name, value in settings.items()}}
    process = subprocess.Popen(
        [sys.executable, "-m", "edge_agent.cli", "run", "--store-id", STORE, "--broker",
         broker.url, "--db", str(db_path), "--port", str(port), "--workers", "2",
         "--log-level", "WARNING"], env=env, stdin=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"

    def readyz() -> tuple[int, dict[str, Any]]:
        response = httpx.get(url + "/readyz", timeout=10)
        return response.status_code, response.json()

    try:
        assert wait_for_port("127.0.0.1", port, timeout=60), "the agent did not listen"
        wait_until(lambda: readyz()[1]["checks"]["broker"], timeout=30, what="subscribed")
        yield StoreAgent(db_path, readyz)
    finally:
        stop_agent_process(process)


@pytest.fixture
def publisher(mosquitto_broker: MosquittoBroker) -> Iterator[Publisher]:
    pub = Publisher(mosquitto_broker.host, mosquitto_broker.port)
    yield pub
    pub.close()


def test_poison_timestamps_are_dead_lettered_and_the_next_1000_events_stored(
        store_agent: StoreAgent, publisher: Publisher) -> None:
    # Each of these once passed validation and then failed the writer's UTC conversion
    # (the batch retried forever), or was stored and froze "latest" state.
    for ts in POISON_TIMESTAMPS:
        publisher.event(shelf_event(ts=ts))
        publisher.event(pos_event(ts=ts))
    after = [zone_event(ts=iso(datetime.now(UTC))) for _ in range(1000)]
    for event in after:
        publisher.event(event)
    publisher.flush()
    wait_until(lambda: count(store_agent.db_path, "SELECT count(*) FROM events") == 1000,
               timeout=30, what="the 1,000 events after the poison")
    letters = rows(store_agent.db_path, "SELECT reason FROM dead_letters")
    assert len(letters) == 2 * len(POISON_TIMESTAMPS)
    assert all("'ts'" in letter["reason"] for letter in letters)
    assert count(store_agent.db_path, "SELECT count(*) FROM transactions") == 0
    wait_until(lambda: store_agent.readyz()[1]["checks"]["committing"], what="committing")


def test_far_off_readings_do_not_freeze_a_shelf_or_a_display(
        store_agent: StoreAgent, publisher: Publisher) -> None:
    now = datetime.now(UTC)
    future = shelf_event(quantity=0, ts=iso(now + timedelta(days=1)))
    ancient = shelf_event(quantity=0, ts="0999-01-01T00:00:00Z")
    present = presence_event(customer_id="C-AWAY", ts="2099-01-01T00:00:00Z")
    current = shelf_event(quantity=20, ts=iso(now))
    # A till or gateway that was offline catches up: late, but real.
    late = shelf_event(quantity=5, ts=iso(now - timedelta(hours=2)))
    backlog_sale = pos_event(ts=iso(now - timedelta(days=3)))
    for event in (future, ancient, present, current, late, backlog_sale):
        publisher.event(event)
    publisher.flush()
    wait_until(lambda: count(store_agent.db_path, "SELECT count(*) FROM events") == 3,
               what="current and late events")
    (shelf,) = rows(store_agent.db_path, "SELECT quantity, event_id FROM shelf_state")
    assert (shelf["quantity"], shelf["event_id"]) == (20, current["event_id"])
    assert count(store_agent.db_path, "SELECT count(*) FROM presence") == 0
    assert count(store_agent.db_path, "SELECT count(*) FROM transactions") == 1
    assert count(store_agent.db_path, "SELECT count(*) FROM dead_letters") == 3


def test_a_sale_retried_under_three_event_ids_counts_once_everywhere(
        store_agent: StoreAgent, publisher: Publisher) -> None:
    consenting_shopper(store_agent.db_path, "C-RETRY")  # features exist only with consent
    sale = pos_event(customer_id="C-RETRY", items=[
        {"product_id": "P-MILK", "quantity": 2, "unit_price": 1.0}], total=2.0)
    for _ in range(3):  # the till timed out waiting for its ack, twice
        publisher.event({**sale, "event_id": pos_event()["event_id"]})
    publisher.flush()
    wait_until(lambda: count(store_agent.db_path, "SELECT count(*) FROM events") == 3,
               what="three events")
    db = store_agent.db_path
    assert count(db, "SELECT count(*) FROM transactions") == 1
    assert count(db, "SELECT count(*) FROM transaction_items") == 1
    (daily,) = rows(db, "SELECT baskets, units FROM product_daily_sales"
                        " WHERE product_id = 'P-MILK'")
    assert (daily["baskets"], daily["units"]) == (1, 2.0)
    assert count(db, "SELECT sales FROM shopper_features WHERE customer_id = 'C-RETRY'") == 1


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 12 MB tmpfs: a store whose disk fills up. Needs root (CI runs as root)."""
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=12m", "tmpfs",
                             str(mount_point)], capture_output=True, text=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {result.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["workers-1", "workers-2"])
def test_a_full_disk_loses_nothing_acknowledged_says_so_and_resumes(
        mode: str, mosquitto_broker: MosquittoBroker, small_disk: Path,
        publisher: Publisher) -> None:
    runner = _run_agent(mode, mosquitto_broker, small_disk / "edge.db",
                        storage_alarm_free_mb=4)
    agent = next(runner)
    try:
        # ~6 KB stored per event: 2,400 of them are more than the disk holds.
        events = [zone_event(ts=iso(datetime.now(UTC)), firmware_note="x" * 6000)
                  for _ in range(2400)]
        for event in events:
            publisher.event(event)
        publisher.flush(timeout=60)

        def storage_failing() -> bool:
            return agent.readyz()[1]["storage"]["state"] == "failing"

        wait_until(storage_failing, timeout=60, what="/readyz saying storage is failing")
        status, body = agent.readyz()
        assert status == 503 and not body["checks"]["storage"]
        assert "full" in body["storage"]["detail"]
        stored_while_full = count(agent.db_path, "SELECT count(*) FROM events")
        assert stored_while_full < len(events)
        # The operator makes room; ingestion resumes by itself, and the broker still holds
        # every message the agent did not acknowledge.
        subprocess.run(["mount", "-o", "remount,size=64m", str(small_disk)], check=True)
        wait_until(lambda: count(agent.db_path, "SELECT count(*) FROM events") == len(events),
                   timeout=90, what="every event once the disk has room")
        assert count(agent.db_path, "SELECT count(*) FROM dead_letters") == 0
        wait_until(lambda: agent.readyz()[1]["storage"]["state"] in ("ok", "low"),
                   timeout=30, what="storage ok again")
    finally:
        runner.close()


def test_retained_bad_message_and_a_huge_topic_cost_a_bounded_amount(
        mosquitto_broker: MosquittoBroker, publisher: Publisher, tmp_path: Path,
        capfd: pytest.CaptureFixture[str]) -> None:
    db_path = tmp_path / "edge.db"
    publisher.client.publish(f"stores/{STORE}/shelf/s-1", b"not json", qos=1,
                             retain=True).wait_for_publish(10)
    for _ in range(3):  # three restarts: the retained message comes back each time
        runner = _run_agent("workers-1", mosquitto_broker, db_path)
        next(runner)
        wait_until(lambda: count(db_path, "SELECT count(*) FROM dead_letters") == 1,
                   what="the retained message dead-lettered")
        runner.close()
    assert count(db_path, "SELECT repeats FROM dead_letters") >= 1

    runner = _run_agent("workers-1", mosquitto_broker, db_path)
    next(runner)
    try:
        size_before = db_path.stat().st_size + _wal_size(db_path)
        capfd.readouterr()
        huge_topic = f"stores/{STORE}/pos/" + "x" * 60_000
        for n in range(2000):
            publisher.publish(huge_topic, f"junk-{n:05d}".encode())
        publisher.flush(timeout=60)
        wait_until(lambda: count(db_path, "SELECT count(*) FROM dead_letters") == 2001,
                   timeout=60, what="2,000 dead letters")
        growth = db_path.stat().st_size + _wal_size(db_path) - size_before
        # Was 165 MB of database and 120 MB of log: the topic was kept whole each time.
        assert growth < 5_000_000, growth
        assert len(capfd.readouterr().err) < 100_000
        (longest,) = rows(db_path, "SELECT max(length(topic)) AS n FROM dead_letters")
        assert longest["n"] <= 515
    finally:
        runner.close()


def _wal_size(db_path: Path) -> int:
    wal = db_path.with_name(db_path.name + "-wal")
    return wal.stat().st_size if wal.exists() else 0


def test_a_second_agent_on_the_same_database_is_refused(
        mosquitto_broker: MosquittoBroker, tmp_path: Path) -> None:
    db_path = tmp_path / "edge.db"
    runner = _run_agent("workers-1", mosquitto_broker, db_path)
    next(runner)
    try:
        for workers in ("1", "2"):
            second = subprocess.run(
                [sys.executable, "-m", "edge_agent.cli", "run", "--store-id", STORE,
                 "--broker", mosquitto_broker.url, "--db", str(db_path), "--port",
                 str(free_port()), "--workers", workers], capture_output=True, text=True,
                timeout=60, stdin=subprocess.DEVNULL)
            assert second.returncode == 2
            message = second.stderr.strip().splitlines()[-1]
            assert "another edge agent" in message and str(db_path) in message
    finally:
        runner.close()


def test_ingestion_that_stops_unexpectedly_is_restarted_and_loses_nothing(
        mosquitto_broker: MosquittoBroker, publisher: Publisher, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from edge_agent.ingestion.service import IngestionService

    real_complete = IngestionService._complete
    failures = {"left": 1}

    def complete_once_failing(self: IngestionService, *args: Any) -> None:
        if failures["left"]:
            failures["left"] -= 1
            raise RuntimeError("injected: the pump trips over a bug")
        real_complete(self, *args)

    monkeypatch.setattr(IngestionService, "_complete", complete_once_failing)
    db_path = tmp_path / "edge.db"
    app = create_app(load_settings(store_id=STORE, broker=mosquitto_broker.url, db=db_path,
                                   batch_max_wait_ms=5))
    with TestClient(app) as client:
        agent = app.state.serving.agent
        wait_until(lambda: agent.connected, what="subscribed")
        events = [zone_event(ts=iso(datetime.now(UTC))) for _ in range(300)]
        for event in events:
            publisher.event(event)
        publisher.flush()
        wait_until(lambda: count(db_path, "SELECT count(DISTINCT event_id) FROM events") == 300,
                   timeout=30, what="every event after the restart")
        assert agent.metrics.registry.get_sample_value("edge_ingest_restarts_total") == 1
        wait_until(lambda: client.get("/readyz").json()["checks"]["broker"],
                   what="connected again")


def test_an_agent_whose_ingestion_keeps_failing_gives_up_and_says_so(
        mosquitto_broker: MosquittoBroker, publisher: Publisher, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from edge_agent import agent as agent_module
    from edge_agent.ingestion.service import IngestionService

    def always_failing(self: IngestionService, *args: Any) -> None:
        raise RuntimeError("injected: a bug on every batch")

    monkeypatch.setattr(IngestionService, "_complete", always_failing)
    monkeypatch.setattr(agent_module, "RESTARTS_ALLOWED", 1)
    told: list[str] = []
    db_path = tmp_path / "edge.db"
    app = create_app(load_settings(store_id=STORE, broker=mosquitto_broker.url, db=db_path,
                                   batch_max_wait_ms=5), on_fatal=told.append)
    with TestClient(app) as client:
        wait_until(lambda: app.state.serving.agent.connected, what="subscribed")
        for _ in range(5):
            publisher.event(zone_event(ts=iso(datetime.now(UTC))))
            publisher.flush()
            wait_until(lambda: told or app.state.serving.agent.connected, timeout=15,
                       what="restarted")
        wait_until(lambda: bool(told), timeout=30, what="the agent giving up")
        response = client.get("/readyz")
        assert response.status_code == 503
        assert "injected" in response.json()["failed"]


def test_timestamps_are_stored_fixed_width_utc(store_agent: StoreAgent,
                                               publisher: Publisher) -> None:
    moment = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
    event = shelf_event(ts=moment.astimezone(timezone(timedelta(hours=-5))).isoformat())
    publisher.event(event)
    publisher.flush()
    wait_until(lambda: count(store_agent.db_path, "SELECT count(*) FROM events") == 1,
               what="stored")
    (row,) = rows(store_agent.db_path, "SELECT ts FROM events")
    assert row["ts"] == format_ts(moment) and len(row["ts"]) == 27


def test_a_sigterm_to_the_whole_group_does_not_kill_the_writer_mid_batch(
        mosquitto_broker: MosquittoBroker, publisher: Publisher, tmp_path: Path) -> None:
    # `timeout`, Ctrl-C and a systemd stop signal every process of the agent; the agent
    # stops its writer itself, after the last batch.
    from edge_agent.agent import Agent

    db_path = tmp_path / "edge.db"
    settings = load_settings(store_id=STORE, broker=mosquitto_broker.url, db=db_path,
                             batch_max_wait_ms=5)
    with Agent(settings) as agent:
        assert agent.ingestion.wait_connected(10)
        publisher.event(zone_event(ts=iso(datetime.now(UTC))))
        publisher.flush()
        wait_until(lambda: count(db_path, "SELECT count(*) FROM events") == 1, what="stored")
        writer = agent.ingestion.writer_pid  # running and committing
        assert writer is not None
        os.kill(writer, signal.SIGTERM)
        publisher.event(zone_event(ts=iso(datetime.now(UTC))))
        publisher.flush()
        wait_until(lambda: count(db_path, "SELECT count(*) FROM events") == 2, what="stored")
        assert agent.ingestion.writer_pid == writer
        assert agent.metrics.registry.get_sample_value("edge_ingest_storage_errors_total") == 0
