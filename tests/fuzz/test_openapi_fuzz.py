"""Fuzz every operation of the OpenAPI spec against a live agent: no input gives a 500."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from edge_agent.api.app import create_app
from edge_agent.api.server import BackgroundServer
from edge_agent.broker import free_port
from edge_agent.settings import load_settings
from tests.api.conftest import KEYS, seed_catalog
from tests.ingestion.conftest import STORE, wait_until

# Enough examples per operation to hit boundaries and odd strings, few enough for CI.
EXAMPLES_PER_OPERATION = 40


@pytest.fixture(scope="module")
def live_agent(tmp_path_factory: pytest.TempPathFactory, bundles: object) -> Iterator[str]:
    from edge_agent.broker import MosquittoBroker, find_mosquitto
    from tests.conftest import require_component

    require_component("mosquitto", find_mosquitto() is not None, "apt-get install mosquitto")
    root = tmp_path_factory.mktemp("fuzz")
    with MosquittoBroker(config_dir=root / "mosquitto") as broker:
        db_path = root / "edge.db"
        settings_ = load_settings(
            store_id=STORE, broker=broker.url, db=db_path, port=free_port(),
            model_public_key=bundles.public_key, model_bundle=bundles.v1,  # type: ignore[attr-defined]
            api_keys=[{"name": f"fuzz-{role}", "role": role, "key": key}
                      for role, key in KEYS.items()])
        server = BackgroundServer(create_app(settings_), settings_.http_host,
                                  settings_.port).start()
        try:
            wait_until(lambda: server.agent.ingestion.connected, what="agent connected")
            seed_catalog(Path(db_path))
            yield server.url
        finally:
            server.stop()


def test_no_input_gives_a_server_error(live_agent: str) -> None:
    # The Python API rather than schemathesis' pytest plugin, which does not run under
    # pytest 9. Each operation gets its own Hypothesis run; every failure is collected.
    schema = schemathesis.openapi.from_url(f"{live_agent}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 10, "the spec should list every endpoint"
    failures: list[str] = []
    for operation in operations:
        try:
            _fuzz(operation)
        except Exception as exc:
            failures.append(f"{operation.label}: {str(exc)[:500]}")  # type: ignore[attr-defined]
    assert failures == []


def _fuzz(operation: object) -> None:
    @given(case=operation.as_strategy())  # type: ignore[attr-defined]
    @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    def fuzz(case: schemathesis.Case) -> None:
        case.call_and_validate(headers={"X-API-Key": KEYS["admin"]},
                               checks=[not_a_server_error])

    fuzz()
