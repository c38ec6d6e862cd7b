"""Token-bucket pacing: an average rate held accurately from a few to many thousand events/s."""

from __future__ import annotations

import time
from collections.abc import Callable

# The bucket holds at most this much time's worth of tokens: enough that one sleep (whose
# granularity is ~0.1 ms on Linux, far coarser elsewhere) releases a batch rather than
# one event, small enough that a stall is not followed by a visible burst.
BURST_SECONDS = 0.02
# Never sleep less than this: shorter sleeps cost more in overhead than they gain.
MIN_SLEEP_S = 0.0005


class TokenBucket:
    """`acquire(n)` blocks until at least one token is available and takes up to `n`."""

    def __init__(self, rate: float, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self.capacity = max(1.0, rate * BURST_SECONDS)
        self._clock = clock
        self._sleep = sleep
        self._tokens = 1.0
        self._last = clock()

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.capacity, self._tokens + (now - self._last) * self.rate)
        self._last = now

    def acquire(self, n: int = 1, *, timeout: float | None = None) -> int:
        """Take between 1 and `n` tokens, waiting as needed; 0 if `timeout` passed first."""
        deadline = None if timeout is None else self._clock() + timeout
        while True:
            self._refill()
            if self._tokens >= 1.0:
                taken = min(n, int(self._tokens))
                self._tokens -= taken
                return taken
            wait = max(MIN_SLEEP_S, (1.0 - self._tokens) / self.rate)
            if deadline is not None:
                remaining = deadline - self._clock()
                if remaining <= 0:
                    return 0
                wait = min(wait, remaining)
            self._sleep(wait)
