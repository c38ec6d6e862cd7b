"""Where a model call runs: a graph the smoke test found fast runs on the event loop (the hop
to a thread cost more than the graph), until one of its calls takes too long there; any
other on a model thread."""

from __future__ import annotations

import asyncio
import threading
import time

from edge_agent.api.model_calls import ON_LOOP_LIMIT_S, ModelCalls


def _model(threads: list[int], cpu_s: float = 0.0) -> int:
    threads.append(threading.get_ident())
    started = time.thread_time()
    while time.thread_time() - started < cpu_s:  # CPU, as a graph burns it
        pass
    return len(threads)


def test_a_fast_model_runs_on_the_loop_until_one_call_is_slow_there() -> None:
    calls, threads = ModelCalls(threads=1, deadline_s=5.0), []

    async def serve() -> int:
        await calls.run(lambda: _model(threads), "v1/nbr")
        await calls.run(lambda: _model(threads, cpu_s=ON_LOOP_LIMIT_S * 1.5), "v1/nbr")
        await calls.run(lambda: _model(threads), "v1/nbr")  # sent off the loop for good
        await calls.run(lambda: _model(threads), "v2/nbr")  # another bundle's graph
        await calls.run(lambda: _model(threads), None)  # not found fast: a thread
        return threading.get_ident()

    try:
        loop = asyncio.run(serve())
    finally:
        calls.close()
    on_loop = [thread == loop for thread in threads]
    assert on_loop == [True, True, False, True, False]
