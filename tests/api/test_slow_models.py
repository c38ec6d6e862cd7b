"""A slow model that got through anyway (here: a smoke budget set far too generous) cannot
freeze the service: model calls run off the event loop with a deadline, `/healthz` keeps
answering at once, and a shopper gets the store's favourites, saying why, instead of a
hang."""

from __future__ import annotations

import statistics
import threading
import time
from pathlib import Path

from fastapi.testclient import TestClient

from edge_agent.api.app import create_app
from edge_agent.broker import MosquittoBroker
from edge_agent.settings import load_settings
from tests.api.conftest import KEYS, buy, seed_catalog
from tests.ingestion.conftest import STORE, Publisher, count, wait_until
from tests.model_bundles import Bundles, build_with_ranker, slow_ranker
from tests.shopper_ids import device_shopper_id

HEALTHZ_BUDGET_S = 0.050


def test_a_slow_ranker_does_not_delay_healthz_and_shoppers_get_favourites(
        mqtt_broker: MosquittoBroker, tmp_path: Path, bundles: Bundles) -> None:
    slow = build_with_ranker(bundles, tmp_path / "slow", "test-slow", slow_ranker())
    settings = load_settings(
        store_id=STORE, broker=mqtt_broker.url, db=tmp_path / "edge.db", batch_max_wait_ms=5,
        mqtt_protocol=mqtt_broker.mqtt_protocol, model_public_key=bundles.public_key,
        model_bundle=slow, model_smoke_budget_ms=600_000, model_deadline_ms=150,
        api_keys=[{"name": f"test-{role}", "role": role, "key": key}
                  for role, key in KEYS.items()])
    with TestClient(create_app(settings)) as client:
        models = client.get("/v1/admin/models", headers={"X-API-Key": KEYS["admin"]}).json()
        assert models["active"]["version"] == "test-slow"
        seed_catalog(settings.db)
        publisher = Publisher(mqtt_broker.host, mqtt_broker.port, mqtt_broker.mqtt_protocol)
        store = _Shim(publisher)
        for days in (21, 14, 7):
            buy(store, "C-WEEKLY", days, "MILK", "BREAD")  # type: ignore[arg-type]
        publisher.close()
        wait_until(lambda: count(settings.db, "SELECT count(*) FROM shopper_features") == 1,
                   what="the shopper's features")

        weekly = device_shopper_id(settings.db, "C-WEEKLY")
        answers: list[tuple[float, dict]] = []
        stop = threading.Event()

        def shopper() -> None:
            while not stop.is_set():
                started = time.perf_counter()
                response = client.get(f"/v1/shoppers/{weekly}/recommendations",
                                      headers={"X-API-Key": KEYS["kiosk"]})
                answers.append((time.perf_counter() - started, response.json()))

        shoppers = [threading.Thread(target=shopper) for _ in range(4)]
        for thread in shoppers:
            thread.start()
        try:
            time.sleep(1.0)  # every model thread busy with the slow ranker
            probes = []
            for _ in range(40):
                started = time.perf_counter()
                assert client.get("/healthz").status_code == 200
                probes.append(time.perf_counter() - started)
                time.sleep(0.05)
        finally:
            stop.set()
            for thread in shoppers:
                thread.join()

    # 95% of probes within the budget; a single probe may lose a time slice to the OS on a
    # shared 2-core machine, but never the model's seconds (before: 15 s).
    p95 = statistics.quantiles(probes, n=20)[-1]
    assert p95 < HEALTHZ_BUDGET_S and max(probes) < 5 * HEALTHZ_BUDGET_S, (
        f"/healthz: p95 {p95 * 1000:.0f} ms, max {max(probes) * 1000:.0f} ms, median "
        f"{statistics.median(probes) * 1000:.1f} ms beside a slow model")
    assert answers, "no shopper got an answer"
    degraded = [body for _, body in answers if body.get("degraded")]
    assert degraded, "the slow ranker's answers should have been replaced by favourites"
    assert all(not body["personalized"] for body in degraded)
    assert all("popular" in item["tags"] for body in degraded for item in body["items"])
    assert "150 ms" in degraded[0]["degraded"]
    # A shopper waits about the deadline, not the model's seconds.
    assert statistics.median(seconds for seconds, _ in answers) < 1.0


class _Shim:
    """What `buy` needs of a store: a publisher."""

    def __init__(self, publisher: Publisher) -> None:
        self.publisher = publisher
