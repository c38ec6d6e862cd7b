"""The store's bundle folder: versions only move forward, a restart serves what was served,
and a bundle is checked on realistic shoppers (speed, finite scores) before it is served."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from edge_agent.api.app import create_app
from edge_agent.broker import MosquittoBroker
from edge_agent.settings import Settings, load_settings
from tests.api.conftest import KEYS, drop_bundle
from tests.ingestion.conftest import STORE, wait_until
from tests.model_bundles import Bundles, build_with_ranker, nan_ranker, slow_ranker

ADMIN = {"X-API-Key": KEYS["admin"]}


@pytest.fixture
def settings(mqtt_broker: MosquittoBroker, tmp_path: Path, bundles: Bundles) -> Settings:
    return load_settings(
        store_id=STORE, broker=mqtt_broker.url, db=tmp_path / "edge.db",
        mqtt_protocol=mqtt_broker.mqtt_protocol, model_public_key=bundles.public_key,
        model_bundle=bundles.v1, model_watch_interval_s=0.2,
        api_keys=[{"name": "admin", "role": "admin", "key": KEYS["admin"]}])


@contextmanager
def running(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as client:
        yield client


def served(client: TestClient) -> str | None:
    active = client.get("/v1/admin/models", headers=ADMIN).json()["active"]
    return active["version"] if active else None


def test_a_restart_serves_what_was_served_even_after_a_rollback(settings: Settings,
                                                               bundles: Bundles) -> None:
    folder = settings.bundle_folder
    with running(settings) as client:
        assert served(client) == "test-1"
        drop_bundle(bundles.v2, folder)  # an operator drops a newer bundle
        wait_until(lambda: served(client) == "test-2", what="the watcher serving test-2")
        back = client.post("/v1/admin/models/rollback", headers=ADMIN)
        assert back.json()["active"]["version"] == "test-1"
    with running(settings) as client:
        # The watcher has looked at the folder (holding test-2) during start-up.
        assert served(client) == "test-1", "a rollback was undone by a restart"


def test_the_newest_version_wins_not_the_newest_file(settings: Settings, bundles: Bundles,
                                                     tmp_path: Path) -> None:
    with running(settings) as client:
        drop_bundle(bundles.build(tmp_path / "b3", "test-3"), settings.bundle_folder, "b3")
        wait_until(lambda: served(client) == "test-3", what="test-3 served")
        old = drop_bundle(bundles.v2, settings.bundle_folder, "b2")
        future = 4_000_000_000  # the older version, with the newest mtime
        os.utime(settings.bundle_folder / old, (future, future))
        # The watcher installs what it looks at, then decides within the same look.
        wait_until(lambda: (settings.bundle_folder / "installed" / "test-2").is_dir(),
                   what="b2 looked at")
        time.sleep(3 * settings.model_watch_interval_s)
        assert served(client) == "test-3"


@pytest.mark.parametrize(("ranker", "reason"), [
    (nan_ranker, "non-finite"),
    (slow_ranker, "took"),
])
def test_a_signed_ranker_that_is_slow_or_scores_nan_is_refused(
        settings: Settings, bundles: Bundles, tmp_path: Path, ranker: object,
        reason: str) -> None:
    bad = build_with_ranker(bundles, tmp_path / "bad", "test-9", ranker())  # type: ignore[operator]
    with running(settings) as client:
        name = drop_bundle(bad, settings.bundle_folder)
        response = client.post("/v1/admin/models/load", headers=ADMIN, json={"path": name})
        assert response.status_code == 422
        assert response.json()["error"]["code"] == "bundle_refused"
        assert reason in response.json()["error"]["message"]
        assert served(client) == "test-1"


def test_old_bundles_are_pruned_within_the_budget(settings: Settings, bundles: Bundles,
                                                  tmp_path: Path) -> None:
    size_mb = sum(p.stat().st_size for p in bundles.v1.iterdir()) / 2**20
    tight = settings.model_copy(update={"model_bundle_budget_mb": size_mb * 2.5})
    with running(tight) as client:
        for n in range(2, 6):
            drop_bundle(bundles.build(tmp_path / f"b{n}", f"test-{n}"), tight.bundle_folder)
            wait_until(lambda n=n: served(client) == f"test-{n}", what=f"test-{n} served")
    held = sorted(p.name for p in (tight.bundle_folder / "installed").iterdir())
    assert "test-5" in held and "test-4" in held  # served, and the one to roll back to
    assert len(held) <= 2
