"""A small time-to-live cache for store-wide answers (trending, display content) that every
kiosk and display asks for and that change over minutes, not per request.

Single flight, stale while revalidating: when an entry expires, one request recomputes it
while the others keep getting the previous value, so an expensive aggregate over the
store's history is never computed by every waiting request at once. Only the very first
request for a key waits for the computation.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from typing import Any


class TtlCache:
    def __init__(self) -> None:
        self._entries: dict[Hashable, tuple[float, Any]] = {}
        self._computing: dict[Hashable, threading.Lock] = {}
        self._lock = threading.Lock()

    def get_or_compute(self, key: Hashable, ttl_s: float, compute: Callable[[], Any]) -> Any:
        with self._lock:
            entry = self._entries.get(key)
            flight = self._computing.setdefault(key, threading.Lock())
        if entry is not None and entry[0] > time.monotonic():
            return entry[1]
        if entry is not None and not flight.acquire(blocking=False):
            return entry[1]  # someone is already refreshing it: serve the previous value
        if entry is None:
            flight.acquire()  # the first ever: wait for whoever computes it
            with self._lock:
                entry = self._entries.get(key)
            if entry is not None and entry[0] > time.monotonic():
                flight.release()
                return entry[1]
        try:
            value = compute()
            with self._lock:
                self._entries[key] = (time.monotonic() + ttl_s, value)
            return value
        finally:
            flight.release()
