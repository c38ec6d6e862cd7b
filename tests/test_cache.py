"""The store-wide answer cache computes once per expiry, however many ask at once."""

from __future__ import annotations

import threading
import time

from edge_agent.api.cache import TtlCache


def test_concurrent_cold_requests_compute_once() -> None:
    cache = TtlCache()
    calls = []

    def slow() -> int:
        calls.append(1)
        time.sleep(0.2)
        return 42

    results: list[int] = []
    threads = [threading.Thread(target=lambda: results.append(
        cache.get_or_compute("k", 60, slow))) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [42] * 8 and len(calls) == 1


def test_expired_entry_is_served_stale_while_it_refreshes_in_the_background() -> None:
    cache = TtlCache()
    cache.get_or_compute("k", 0.01, lambda: "old")
    time.sleep(0.02)
    calls = []
    release = threading.Event()

    def refresh() -> str:
        calls.append(1)
        release.wait(5)
        return "new"

    began = time.monotonic()
    assert [cache.get_or_compute("k", 60, refresh) for _ in range(5)] == ["old"] * 5
    assert time.monotonic() - began < 0.1  # nobody waited for the refresh
    release.set()
    deadline = time.monotonic() + 5
    while cache.get_or_compute("k", 60, refresh) != "new" and time.monotonic() < deadline:
        time.sleep(0.01)
    assert cache.get_or_compute("k", 60, refresh) == "new"
    assert len(calls) == 1  # one refresh, however many noticed the expiry
    cache.close()


def test_a_failing_refresh_keeps_the_previous_value() -> None:
    cache = TtlCache()
    cache.get_or_compute("k", 0.01, lambda: "old")
    time.sleep(0.02)

    failed = threading.Event()

    def broken() -> str:
        failed.set()
        raise RuntimeError("database gone")

    assert cache.get_or_compute("k", 60, broken) == "old"
    assert failed.wait(5)
    time.sleep(0.05)
    assert cache.get_or_compute("k", 60, broken) == "old"
    cache.close()
