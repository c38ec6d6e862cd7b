"""`edge-agent import layout` takes effect in a running store: the swap itself (a whole new
map, one reference replaced, requests keep the map they started with, a bad file changes
nothing), and a real `edge-agent run --workers 2` following an import within seconds."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from http.client import HTTPConnection
from pathlib import Path
from typing import Any, cast

import psutil
import pytest

from edge_agent.api.state import ServingState
from edge_agent.broker import MosquittoBroker, free_port, wait_for_port
from edge_agent.masterdata.layout import (
    import_layout,
    imported_layout_path,
    layout_to_follow,
    running_store_notice,
    with_imported_layout,
)
from edge_agent.settings import Settings, load_settings, settings_from_json, settings_to_json
from edge_agent.wayfinding import LiveStoreMap
from store_layouts import load_layout
from store_layouts.catalog import LAYOUT_DIR
from tests.ingestion.conftest import stop_agent_process, wait_until
from tests.test_operator_setup import cli, write_chain_exports

A, B = "convenience", "supermarket"  # the store's old floor plan and its new one
CATEGORIES = ["milk", "bread", "cheese", "frozen pizza", "coffee"]
KIOSK_KEY = "kiosk-key-for-the-live-layout-test"
WORKERS = 2
# What the operator is promised is a few seconds; the test allows some slack for a loaded
# machine, no more.
PICKUP_DEADLINE_S = 10.0


def _store(tmp_path: Path, **given: Any) -> Settings:
    return load_settings(db=tmp_path / "edge.db", **given)


def _items(names: list[str]) -> list[tuple[str, str]]:
    return [(f"sku-{i}", category) for i, category in enumerate(names)]


def _corrupt(path: Path) -> None:
    """What a hand copy cut short leaves: the first half of a good file, written in place."""
    text = (LAYOUT_DIR / f"{A}.json").read_text()
    path.write_text(text[: len(text) // 2])


# -- the swap -----------------------------------------------------------------------------


def test_an_import_swaps_in_a_whole_new_map_and_a_request_keeps_its_own(tmp_path: Path
                                                                       ) -> None:
    settings = _store(tmp_path)
    import_layout(settings, LAYOUT_DIR / f"{A}.json")
    live = LiveStoreMap(settings.layout, follow=layout_to_follow(settings))
    assert live.current.layout.id == A
    assert live.follow() is False  # nothing changed
    state = ServingState(**{name: cast(Any, None) for name in (
        "settings", "ingest", "reads", "keyring", "models", "metrics_registry", "memo",
        "model_calls")}, live_map=live)
    in_flight = state.for_request()

    import_layout(settings, LAYOUT_DIR / f"{B}.json")  # the same path, new content
    assert live.follow() is True
    new = live.current
    assert new.layout.id == B and in_flight.store_map.layout.id == A
    assert state.for_request().store_map is new  # the next request plans on B
    # Nothing of A's planner (cached per path) answers for B: the distance tables are B's.
    expected = load_layout(B)
    assert len(new.base.graph.node_ids) == len(expected.nodes)
    route = new.plan(_items(CATEGORIES))
    assert route.layout_id == B
    shelves = {shelf for stop in route.stops for shelf in stop.shelves}
    assert shelves and shelves <= set(expected.shelves)
    assert in_flight.store_map.plan(_items(CATEGORIES)).layout_id == A


def test_a_file_that_does_not_load_leaves_the_running_layout(tmp_path: Path,
                                                             caplog: pytest.LogCaptureFixture
                                                             ) -> None:
    settings = _store(tmp_path)
    import_layout(settings, LAYOUT_DIR / f"{B}.json")
    live = LiveStoreMap(settings.layout, follow=layout_to_follow(settings))
    running = live.current
    _corrupt(imported_layout_path(settings))
    assert live.follow() is False and live.current is running
    assert "still routing on layout supermarket" in caplog.text
    assert live.follow() is False  # read once per change, not every second
    imported_layout_path(settings).unlink()
    assert live.follow() is False and live.current is running
    import_layout(settings, LAYOUT_DIR / f"{A}.json")  # a good one is taken again
    assert live.follow() is True and live.current.layout.id == A


def test_traffic_pricing_carries_over_to_the_new_layout(tmp_path: Path) -> None:
    settings = _store(tmp_path)
    live = LiveStoreMap(settings.layout, follow=layout_to_follow(settings))
    assert live.current.layout.id == B  # the shipped default until something is imported
    zone = next(iter(load_layout(A).zones.keys() & load_layout(B).zones.keys()))
    live.current.apply_traffic({zone: 12.0})
    import_layout(settings, LAYOUT_DIR / f"{A}.json")
    assert live.follow() is True
    assert live.current.traffic == {zone: 12.0}
    assert live.current.planner is not live.current.base  # priced, not free walking


def test_a_configured_layout_wins_in_the_agent_process_and_in_its_workers(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    default = _store(tmp_path)
    monkeypatch.setenv("EDGE_LAYOUT", "hypermarket")
    configured = _store(tmp_path)
    import_layout(default, LAYOUT_DIR / f"{A}.json")
    for settings in (default, with_imported_layout(default)):
        worker = settings_from_json(settings_to_json(settings))
        assert layout_to_follow(settings) == layout_to_follow(worker) == \
            imported_layout_path(default)
    assert "within 2 s" in running_store_notice(default)
    worker = settings_from_json(settings_to_json(configured))
    assert layout_to_follow(configured) is None and layout_to_follow(worker) is None
    assert with_imported_layout(configured).layout == "hypermarket"
    assert "keeps that layout" in running_store_notice(configured)
    assert LiveStoreMap(worker.layout, layout_to_follow(worker)).current.layout.id == \
        "hypermarket"


# -- a real agent with two HTTP workers ---------------------------------------------------


class Worker:
    """One kept-alive connection, known to be served by worker `pid`."""

    def __init__(self, pid: int, connection: HTTPConnection) -> None:
        self.pid, self.connection = pid, connection

    def call(self, method: str, path: str, body: object | None = None) -> Any:
        headers = {"X-API-Key": KIOSK_KEY, "Content-Type": "application/json"}
        self.connection.request(method, path, body=None if body is None else json.dumps(body),
                                headers=headers)
        response = self.connection.getresponse()
        data = response.read()
        assert response.status == 200, data[:500]
        return json.loads(data)


def http_workers(agent: psutil.Process) -> list[psutil.Process]:
    return [child for child in agent.children()
            if "edge_agent.api.worker" in child.cmdline()]


def connections_to_every_worker(agent: psutil.Process, port: int) -> list[Worker]:
    """Connections opened until each worker holds at least one (the kernel hands a new
    connection to whichever worker accepts first, so which one is found out afterwards)."""
    workers = http_workers(agent)
    assert len(workers) == WORKERS
    found: dict[int, Worker] = {}
    deadline = time.monotonic() + 30
    while len(found) < WORKERS and time.monotonic() < deadline:
        connection = HTTPConnection("127.0.0.1", port, timeout=10)
        connection.connect()
        local = connection.sock.getsockname()[1]
        Worker(0, connection).call("GET", "/v1/store/map")  # accepted by now
        owner = next((w.pid for w in workers for c in w.net_connections("tcp")
                      if c.raddr and c.raddr.port == local), None)
        if owner is not None and owner not in found:
            found[owner] = Worker(owner, connection)
        else:
            connection.close()
    assert len(found) == WORKERS, "could not reach every worker"
    return list(found.values())


@pytest.fixture
def running_store(mqtt_broker: MosquittoBroker, tmp_path: Path
                  ) -> Iterator[tuple[psutil.Process, int, Path, list[str]]]:
    db = tmp_path / "edge.db"
    catalog_csv, _customers, _shoppers = write_chain_exports(tmp_path)
    cli("import", "catalog", str(catalog_csv), "--db", str(db))
    cli("import", "layout", str(LAYOUT_DIR / f"{A}.json"), "--db", str(db))
    products = [row.split(",")[0] for row in catalog_csv.read_text().splitlines()[1:40]]
    port = free_port()
    env = {**os.environ, "EDGE_API_KEYS": json.dumps(
        [{"name": "kiosk", "role": "kiosk", "key": KIOSK_KEY}]),
        "EDGE_MQTT_PROTOCOL": mqtt_broker.mqtt_protocol}
    with (tmp_path / "agent.log").open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "edge_agent.cli", "run", "--store-id", "store-live",
             "--broker", mqtt_broker.url, "--db", str(db), "--port", str(port),
             "--workers", str(WORKERS), "--log-level", "WARNING"],
            env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    try:
        assert wait_for_port("127.0.0.1", port, timeout=60), "the agent did not listen"
        agent = psutil.Process(process.pid)
        wait_until(lambda: len(http_workers(agent)) == WORKERS, timeout=60, what="both workers")
        yield agent, port, db, products
    finally:
        stop_agent_process(process)


@pytest.mark.slow
def test_every_worker_follows_an_import_within_seconds(
        running_store: tuple[psutil.Process, int, Path, list[str]], tmp_path: Path) -> None:
    agent, port, db, products = running_store
    workers = connections_to_every_worker(agent, port)
    for worker in workers:
        assert worker.call("GET", "/v1/store/map")["layout_id"] == A

    done = cli("import", "layout", str(LAYOUT_DIR / f"{B}.json"), "--db", str(db))
    assert "a running agent routes with it within 2 s" in done.stdout
    imported = time.monotonic()

    def everyone_on_b() -> bool:
        return all(w.call("GET", "/v1/store/map")["layout_id"] == B for w in workers)

    wait_until(everyone_on_b, timeout=PICKUP_DEADLINE_S, what="every worker on the new layout")
    took = time.monotonic() - imported
    b_shelves = set(load_layout(B).shelves)
    for worker in workers:
        for _ in range(3):  # and it stays so
            assert worker.call("GET", "/v1/store/map")["layout_id"] == B
        route = worker.call("POST", "/v1/routes", {"product_ids": products})
        shelves = {shelf for stop in route["stops"] for shelf in stop["shelves"]}
        assert route["layout_id"] == B and shelves and shelves <= b_shelves

    _corrupt(imported_layout_path(load_settings(db=db)))
    time.sleep(3)  # three looks at the file by every worker
    for worker in workers:
        assert worker.call("GET", "/v1/store/map")["layout_id"] == B
        assert worker.call("POST", "/v1/routes", {"product_ids": products})["layout_id"] == B
    log = (tmp_path / "agent.log").read_text()
    assert log.count("still routing on layout supermarket") >= WORKERS, log[-2000:]
    print(f"every worker on the new layout {took:.1f} s after the import")
