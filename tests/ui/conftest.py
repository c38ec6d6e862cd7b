"""A live agent on a real HTTP port (a browser needs one), a real broker and database."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from edge_agent.api.app import create_app
from edge_agent.api.server import BackgroundServer
from edge_agent.broker import free_port
from edge_agent.settings import load_settings
from tests.api.conftest import KEYS
from tests.ingestion.conftest import STORE, Publisher, wait_until
from tests.model_bundles import Bundles

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


@dataclass
class LiveStore:
    url: str
    publisher: Publisher
    db_path: Path

    def page_url(self, page: str, role: str, **params: str) -> str:
        query = "&".join([f"key={KEYS[role]}", *(f"{k}={v}" for k, v in params.items())])
        return f"{self.url}/ui/{page}.html?{query}"


@pytest.fixture
def live_store(mqtt_broker: object, tmp_path: Path, bundles: Bundles) -> Iterator[LiveStore]:
    db_path = tmp_path / "edge.db"
    settings = load_settings(
        store_id=STORE, broker=mqtt_broker.url, db=db_path, batch_max_wait_ms=5,  # type: ignore[attr-defined]
        mqtt_protocol=mqtt_broker.mqtt_protocol, port=free_port(),  # type: ignore[attr-defined]
        trending_cache_s=0.5, model_public_key=bundles.public_key, model_bundle=bundles.v1,
        api_keys=[{"name": f"test-{role}", "role": role, "key": key}
                  for role, key in KEYS.items()])
    server = BackgroundServer(create_app(settings), settings.http_host, settings.port).start()
    try:
        wait_until(lambda: server.agent.ingestion.connected, what="agent connected")
        publisher = Publisher(mqtt_broker.host, mqtt_broker.port,  # type: ignore[attr-defined]
                              mqtt_broker.mqtt_protocol)  # type: ignore[attr-defined]
        try:
            yield LiveStore(server.url, publisher, db_path)
        finally:
            publisher.close()
    finally:
        server.stop()
