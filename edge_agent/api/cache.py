"""A tiny time-to-live cache for store-wide answers (trending, display content) that every
kiosk asks for and that change over minutes, not per request."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from typing import Any


class TtlCache:
    def __init__(self) -> None:
        self._entries: dict[Hashable, tuple[float, Any]] = {}
        self._lock = threading.Lock()

    def get_or_compute(self, key: Hashable, ttl_s: float, compute: Callable[[], Any]) -> Any:
        now = time.monotonic()
        with self._lock:
            hit = self._entries.get(key)
        if hit is not None and hit[0] > now:
            return hit[1]
        value = compute()
        with self._lock:
            self._entries[key] = (now + ttl_s, value)
        return value
