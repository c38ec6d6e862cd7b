"""Model work off the event loop: a few threads, and a deadline for each request.

Handlers are `async def` (a thread hop per request would cost the p99 budget), but a
bundle's ONNX graph could be slow on some input, and on the event loop one slow model would
freeze every request, `/healthz` included. So the graphs run here, on at most `threads`
threads; a request waits for one until its deadline and then gets a clear degraded answer.
A call that overruns keeps its thread until it returns (a thread cannot be stopped), but
never more than `threads` of them, and the event loop stays free. ONNX Runtime releases the
GIL while it runs, so a slow model leaves Python time for everything else.

Features are not computed here but on the event loop (`edge_agent/api/personal.py`): as
Python on this thread they contended with the loop for the GIL and doubled the p99 of
recommendations (benchmarks/README.md, Serving, session 8). Staff insights, a rare call,
still run whole here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from edge_agent.api.errors import ServingError

logger = logging.getLogger(__name__)
T = TypeVar("T")


def _lower_priority(niceness: int) -> None:
    """Model threads may run at a lower priority than the threads serving HTTP: on a busy
    store box the event loop (health checks, cached answers, favourites) gets the CPU first."""
    with contextlib.suppress(OSError, AttributeError):  # Linux sets niceness per thread
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), niceness)


class ModelsTooSlow(ServingError):
    status_code = 503
    code = "models_too_slow"


class ModelCalls:
    def __init__(self, threads: int, deadline_s: float, niceness: int = 0) -> None:
        self._threads = threads
        self._deadline_s = deadline_s
        self._executor = ThreadPoolExecutor(threads, thread_name_prefix="model-call",
                                            initializer=_lower_priority,
                                            initargs=(niceness,))
        self._free: asyncio.Semaphore | None = None  # made on the event loop that uses it

    async def run(self, compute: Callable[[], T]) -> T:
        """`compute()` on a model thread; `ModelsTooSlow` once the deadline passes (waiting
        for a free thread counts towards it)."""
        loop = asyncio.get_running_loop()
        if self._free is None:
            self._free = asyncio.Semaphore(self._threads)
        free = self._free
        deadline = loop.time() + self._deadline_s
        try:
            await asyncio.wait_for(free.acquire(), self._deadline_s)
        except TimeoutError:
            raise ModelsTooSlow(f"every model thread is busy past the {self._deadline_ms} ms"
                                " deadline") from None
        future = loop.run_in_executor(self._executor, compute)
        # The thread is given back when the call ends, whenever that is.
        future.add_done_callback(lambda _: free.release())
        try:
            return await asyncio.wait_for(asyncio.shield(future),
                                          max(deadline - loop.time(), 0.0))
        except TimeoutError:
            logger.warning("a model call overran the %d ms deadline", self._deadline_ms)
            raise ModelsTooSlow(f"the models gave no answer within {self._deadline_ms} ms"
                                ) from None

    @property
    def _deadline_ms(self) -> int:
        return round(self._deadline_s * 1000)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
