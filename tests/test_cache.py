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


def test_expired_entry_is_served_stale_while_one_request_refreshes() -> None:
    cache = TtlCache()
    cache.get_or_compute("k", 0.01, lambda: "old")
    time.sleep(0.02)
    started = threading.Event()

    def refresh() -> str:
        started.set()
        time.sleep(0.3)
        return "new"

    refresher = threading.Thread(target=lambda: cache.get_or_compute("k", 60, refresh))
    refresher.start()
    started.wait()
    began = time.monotonic()
    assert cache.get_or_compute("k", 60, refresh) == "old"
    assert time.monotonic() - began < 0.1
    refresher.join()
    assert cache.get_or_compute("k", 60, refresh) == "new"
