"""A live agent on a real HTTP port (a browser needs one), a real broker and database."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from edge_agent.api.app import create_app
from edge_agent.api.server import BackgroundServer
from edge_agent.broker import free_port
from edge_agent.settings import load_settings
from tests.api.conftest import KEYS, days_ago, seed_catalog
from tests.ingestion.conftest import STORE, Publisher, count, pos_event, wait_until
from tests.model_bundles import Bundles
from tests.ui.seeding import SeededStore, seed_store

# The README's screenshots are retaken only when asked (EDGE_UPDATE_SCREENSHOTS=1): a test
# run otherwise leaves the tree as it found it.
SCREENSHOTS = (Path(__file__).resolve().parents[2] / "docs" / "screenshots"
               if os.environ.get("EDGE_UPDATE_SCREENSHOTS") == "1"
               else Path(tempfile.gettempdir()) / "edge-test-screenshots")


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


@pytest.fixture
def regular(live_store: LiveStore) -> LiveStore:
    """C-WEEKLY (loyalty 1000000001) buys milk and bread weekly; others buy too."""
    seed_catalog(live_store.db_path)
    sales = [("C-WEEKLY", days, ("MILK", "BREAD")) for days in (28, 21, 14, 7)]
    sales += [("C-PRIVATE", days, ("SOAP", "OAT")) for days in (2, 1)]
    for customer, age, products in sales:
        live_store.publisher.event(pos_event(
            customer_id=customer, ts=days_ago(age), total=2.0 * len(products),
            items=[{"product_id": p, "quantity": 1, "unit_price": 2.0} for p in products]))
    # Features only for the shopper who consented (C-PRIVATE did not).
    wait_until(lambda: count(live_store.db_path, "SELECT count(*) FROM shopper_features") == 1)
    return live_store


@pytest.fixture
def seeded(live_store: LiveStore) -> tuple[LiveStore, SeededStore]:
    """The demo catalog, a family with a 15-item list, neighbours (tests/ui/seeding.py)."""
    return live_store, seed_store(live_store.db_path, live_store.publisher)


@pytest.fixture
def device(chromium: object) -> Iterator[Callable[[int, int], object]]:
    """Opens a page on a screen of the given size (CSS pixels, at 1x for screenshots)."""
    contexts = []

    def open_page(width: int, height: int) -> object:
        context = chromium.new_context(  # type: ignore[attr-defined]
            viewport={"width": width, "height": height}, device_scale_factor=1)
        contexts.append(context)
        return context.new_page()

    yield open_page
    for context in contexts:
        context.close()
