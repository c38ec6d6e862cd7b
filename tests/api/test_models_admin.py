"""Model bundles: what is served, hot swaps under load, refusals that change nothing."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.api.conftest import Store, seed_catalog
from tests.ingestion.conftest import count, pos_event, wait_until


def _active(store: Store) -> str:
    return store.get("/v1/admin/models", role="admin").json()["active"]["version"]


def test_models_status_names_the_active_bundle(store: Store) -> None:
    status = store.get("/v1/admin/models", role="admin").json()
    assert status["active"]["version"] == "test-1"
    assert set(status["active"]["models"]) == {"nbr", "timing", "segments"}
    # Staff insights (the segment model) run whole on a model thread, so it is not timed.
    assert status["active"]["on_event_loop"] == ["nbr", "timing"]
    assert "timing" in status["active"]["metrics"]
    assert store.get("/v1/admin/models", role="staff").status_code == 403


def test_load_then_roll_back(store: Store) -> None:
    loaded = store.post("/v1/admin/models/load", {"path": store.drop(store.bundles.v2)},
                        role="admin")
    assert loaded.status_code == 200
    assert (loaded.json()["active"]["version"], loaded.json()["previous"]["version"]) == (
        "test-2", "test-1")
    back = store.post("/v1/admin/models/rollback", {}, role="admin")
    assert back.json()["active"]["version"] == "test-1"


@pytest.mark.parametrize("problem", ["tampered", "wrong-key", "missing"])
def test_a_bad_bundle_is_refused_and_the_running_model_stays(store: Store, tmp_path: Path,
                                                             problem: str) -> None:
    if problem == "tampered":
        path = store.bundles.tampered(tmp_path / "tampered")
    elif problem == "wrong-key":
        from models.bundle import generate_keypair

        other_private, _ = generate_keypair(tmp_path / "other-keys")
        path = store.bundles.build(tmp_path / "other", "evil-1", key=other_private)
    else:
        path = None
    name = store.drop(path) if path is not None else "no-such-bundle"
    response = store.post("/v1/admin/models/load", {"path": name}, role="admin")
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "bundle_refused"
    assert str(store.bundle_folder) not in response.text
    assert _active(store) == "test-1"
    assert store.get("/readyz", role=None).json()["checks"]["models"] is True


def test_bundles_load_only_from_the_bundle_folder_and_say_nothing_of_others(
        store: Store, tmp_path: Path) -> None:
    """A path outside the folder is refused with the same words whether it exists or not."""
    reasons = set()
    for path in (str(store.bundles.v2), str(tmp_path / "nothing-here"), "/etc/passwd",
                 "../" + store.bundles.v2.name, f"{store.bundle_folder}/../x"):
        response = store.post("/v1/admin/models/load", {"path": path}, role="admin")
        assert response.status_code == 422, path
        reasons.add(response.json()["error"]["message"])
    assert reasons == {"bundles are loaded only from the store's bundle folder"}
    assert _active(store) == "test-1"


def test_an_older_version_is_refused_unless_rolled_back_explicitly(store: Store,
                                                                  tmp_path: Path) -> None:
    # Named after the served "test-1", so both compare above it: test-2020.01.01 < test-2026.12.01.
    older = store.drop(store.bundles.build(tmp_path / "old", "test-2020.01.01"))
    newer = store.drop(store.bundles.build(tmp_path / "new", "test-2026.12.01"))
    assert store.post("/v1/admin/models/load", {"path": newer}, role="admin").status_code == 200
    refused = store.post("/v1/admin/models/load", {"path": older}, role="admin")
    assert refused.status_code == 422
    assert "not newer than the served test-2026.12.01" in refused.json()["error"]["message"]
    assert _active(store) == "test-2026.12.01"
    back = store.post("/v1/admin/models/load", {"path": older, "rollback": True}, role="admin")
    assert back.status_code == 200 and _active(store) == "test-2020.01.01"


def test_hot_swap_under_concurrent_requests_fails_none(store: Store) -> None:
    seed_catalog(store.db_path)
    for days in (21, 14, 7):
        store.publisher.event(pos_event(customer_id="C-WEEKLY", ts=(
            datetime.now(UTC) - timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            items=[{"product_id": "MILK", "quantity": 1, "unit_price": 1.0}], total=1.0))
    wait_until(lambda: count(store.db_path, "SELECT count(*) FROM shopper_features") == 1)
    failures: list[str] = []
    versions: set[str] = set()
    stop = threading.Event()

    def hammer() -> None:
        while not stop.is_set():
            response = store.get_shopper("C-WEEKLY", "shopping-list")
            if response.status_code != 200 or not response.json()["items"]:
                failures.append(f"{response.status_code}: {response.text[:100]}")
            else:
                versions.add(response.json()["model_version"])

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for thread in threads:
        thread.start()
    names = {True: store.drop(store.bundles.v2), False: store.drop(store.bundles.v1)}
    try:
        for n in range(6):
            forward = n % 2 == 0
            response = store.post("/v1/admin/models/load",
                                  {"path": names[forward], "rollback": not forward},
                                  role="admin")
            assert response.status_code == 200
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert failures == []
    assert versions == {"test-1", "test-2"}, "requests should have seen both versions"
    assert _active(store) == "test-1"
