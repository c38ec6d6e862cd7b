"""A circuit breaker around Bedrock: after `threshold` consecutive failures it opens and
every shopper gets the fallback at once, without a call; after `cooldown_s` one trial call
is let through (half-open), and its outcome closes or reopens the circuit."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half-open"


class CircuitBreaker:
    def __init__(self, threshold: int = 5, cooldown_s: float = 60.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.threshold, self.cooldown_s, self._clock = threshold, cooldown_s, clock
        self._lock = threading.Lock()
        self._failures = 0
        self._opened_at: float | None = None
        self._trial_out = False  # a half-open trial call is under way

    @property
    def state(self) -> str:
        with self._lock:
            return self._state()

    def _state(self) -> str:
        if self._opened_at is None:
            return CLOSED
        return HALF_OPEN if self._clock() - self._opened_at >= self.cooldown_s else OPEN

    def allow(self) -> bool:
        """May a call go now? In half-open, only one trial at a time."""
        with self._lock:
            state = self._state()
            if state == CLOSED:
                return True
            if state == HALF_OPEN and not self._trial_out:
                self._trial_out = True
                return True
            return False

    def success(self) -> None:
        with self._lock:
            self._failures, self._opened_at, self._trial_out = 0, None, False

    def failure(self) -> None:
        with self._lock:
            self._failures += 1
            if self._trial_out or self._failures >= self.threshold:
                self._opened_at = self._clock()  # (re)open: a new cool-down
            self._trial_out = False
