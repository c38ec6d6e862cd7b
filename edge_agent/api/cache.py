"""A small time-to-live cache for store-wide answers (trending, display content, the week's
favourites) that every kiosk and display asks for and that change over minutes, not per
request.

Single flight, stale while revalidating: only the very first request for a key waits for
the computation. When an entry expires, the request that notices gets the previous value at
once and the refresh runs on the cache's own thread, so an aggregate over the store's
history never stalls the requests behind it on the event loop.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Hashable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

logger = logging.getLogger(__name__)


class TtlCache:
    def __init__(self) -> None:
        self._entries: dict[Hashable, tuple[float, Any]] = {}
        self._computing: dict[Hashable, threading.Lock] = {}
        self._lock = threading.Lock()
        # One long-lived thread: its read connection is opened once, and refreshes queue.
        self._refresher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cache-refresh")

    def get_or_compute(self, key: Hashable, ttl_s: float, compute: Callable[[], Any]) -> Any:
        with self._lock:
            entry = self._entries.get(key)
            flight = self._computing.setdefault(key, threading.Lock())
        if entry is not None:
            if entry[0] <= time.monotonic() and flight.acquire(blocking=False):
                self._refresher.submit(self._refresh, key, ttl_s, compute, flight)
            return entry[1]
        with flight:  # the first ever: wait for whoever computes it
            with self._lock:
                entry = self._entries.get(key)
            if entry is not None:
                return entry[1]
            return self._store(key, ttl_s, compute())

    def _refresh(self, key: Hashable, ttl_s: float, compute: Callable[[], Any],
                 flight: threading.Lock) -> None:
        try:
            self._store(key, ttl_s, compute())
        except Exception:
            logger.exception("refreshing %r failed; serving the previous value", key)
        finally:
            flight.release()

    def _store(self, key: Hashable, ttl_s: float, value: Any) -> Any:
        with self._lock:
            self._entries[key] = (time.monotonic() + ttl_s, value)
        return value

    def close(self) -> None:
        self._refresher.shutdown(wait=True, cancel_futures=True)
