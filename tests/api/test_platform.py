"""Probes, metrics, API keys and roles, and input validation of the HTTP service."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from edge_agent.api.app import create_app
from edge_agent.broker import MosquittoBroker
from edge_agent.settings import load_settings
from tests.api.conftest import KEYS, Store, seed_catalog
from tests.conftest import require_component
from tests.ingestion.conftest import STORE, pos_event, wait_until
from tests.shopper_ids import device_shopper_id


def test_liveness_and_readiness(store: Store) -> None:
    assert store.get("/healthz", role=None).json() == {"status": "ok"}
    ready = store.get("/readyz", role=None)
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"database": True, "broker": True, "committing": True,
                                      "storage": True, "models": True}


def test_not_ready_while_the_broker_is_down(store: Store) -> None:
    require_component("mosquitto", isinstance(store.broker, MosquittoBroker),
                      "the embedded broker cannot be stopped and restarted on its port")
    store.broker.stop()
    wait_until(lambda: store.get("/readyz", role=None).status_code == 503,
               what="readiness to notice the broker is gone")
    assert store.get("/readyz", role=None).json()["checks"]["broker"] is False
    store.broker.start()
    wait_until(lambda: store.get("/readyz", role=None).status_code == 200, timeout=30,
               what="readiness after the broker returns")


def test_metrics_show_route_latency_and_ingestion(store: Store) -> None:
    store.publisher.event(pos_event())
    wait_until(lambda: 'edge_events_ingested_total{type="pos.transaction"} 1.0'
               in store.get("/metrics", role=None).text, what="ingest counter")
    store.get("/v1/trending")
    text = store.get("/metrics", role=None).text
    assert 'edge_http_request_seconds_count{method="GET",route="/v1/trending",status="200"}' \
        in text
    assert re.search(r"^edge_ingest_commit_seconds_count [1-9]", text, re.MULTILINE)
    assert re.search(r'edge_model_version_info\{name="[^"]+",version="test-1"\} 1\.0', text)


@pytest.mark.parametrize(("role", "path", "status"), [
    (None, "/v1/trending", 401),
    ("display", "/v1/trending", 200),
    ("display", "/v1/staff/restock-alerts", 403),
    ("kiosk", "/v1/staff/restock-alerts", 403),
    ("staff", "/v1/staff/restock-alerts", 200),
    ("admin", "/v1/staff/restock-alerts", 200),
])
def test_each_role_reaches_only_its_endpoints(store: Store, role: str | None, path: str,
                                              status: int) -> None:
    assert store.get(path, role=role).status_code == status


def test_an_unknown_key_is_401(store: Store) -> None:
    response = store.client.get("/v1/trending", headers={"X-API-Key": "not-a-key-at-all"})
    assert response.status_code == 401


@pytest.mark.parametrize(("params", "field"), [
    ({"limit": 0}, "query.limit"),
    ({"limit": "many"}, "query.limit"),
    ({"window_hours": -1}, "query.window_hours"),
])
def test_invalid_parameter_is_422_naming_the_field(store: Store, params: dict,
                                                   field: str) -> None:
    response = store.get("/v1/trending", **params)
    assert response.status_code == 422
    body = response.json()["error"]
    assert body["code"] == "invalid_request" and field in body["fields"]


def test_a_new_store_without_models_is_ready_and_says_it_serves_favourites(
        mqtt_broker: MosquittoBroker, tmp_path: Path) -> None:
    settings = load_settings(store_id=STORE, broker=mqtt_broker.url, db=tmp_path / "edge.db",
                             mqtt_protocol=mqtt_broker.mqtt_protocol,
                             api_keys=[{"name": "kiosk", "role": "kiosk", "key": KEYS["kiosk"]}])
    app = create_app(settings)
    with TestClient(app) as client:
        wait_until(lambda: app.state.serving.agent.connected, what="connected")
        seed_catalog(tmp_path / "edge.db")
        ready = client.get("/readyz")
        assert ready.status_code == 200
        assert ready.json()["checks"]["models"] is False
        assert any("store favourites" in note for note in ready.json()["degraded"])
        answer = client.get(f"/v1/shoppers/{device_shopper_id(settings.db, 'C-WEEKLY')}/"
                            "recommendations",
                            headers={"X-API-Key": KEYS["kiosk"]})
        assert answer.status_code == 200 and answer.json()["personalized"] is False
