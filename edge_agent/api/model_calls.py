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

A graph the bundle's smoke test found fast on the widest shopper (`LoadedModels.on_loop`)
runs on the event loop as well: the hop to a thread and back (the thread waits for the GIL
the loop holds, then the loop for the answer) cost more than such a graph, and put one
recommendation in seven over 10 ms under load. Each such call is timed; one that takes
more than `ON_LOOP_LIMIT_S` of CPU sends that model's later calls to the thread, for good.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from edge_agent.api.errors import ServingError

logger = logging.getLogger(__name__)
T = TypeVar("T")
# A model call on the event loop holds every request of the worker, /healthz included, for
# as long as it runs: past this (4x what the smoke test let through), never again.
ON_LOOP_LIMIT_S = 0.02


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
        self._sent_off_loop: set[str] = set()

    async def run(self, compute: Callable[[], T], on_loop: str | None = None) -> T:
        """`compute()` on a model thread; `ModelsTooSlow` once the deadline passes (waiting
        for a free thread counts towards it). With `on_loop` (the model's key, from
        `LoadedModels.on_loop_key`), right here on the event loop, unless a call of that
        model took too long there before."""
        if on_loop is not None and on_loop not in self._sent_off_loop:
            return self._on_loop(compute, on_loop)
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

    def _on_loop(self, compute: Callable[[], T], model: str) -> T:
        started = time.thread_time()
        try:
            return compute()
        finally:
            took = time.thread_time() - started
            if took > ON_LOOP_LIMIT_S:
                self._sent_off_loop.add(model)
                logger.warning("model %s took %.0f ms of CPU on the event loop; its calls run"
                               " on a model thread from now on", model, took * 1000)

    @property
    def _deadline_ms(self) -> int:
        return round(self._deadline_s * 1000)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
