"""An open-loop HTTP/1.1 load generator: requests leave on a fixed schedule, whatever the
server's speed, and each latency is measured from its scheduled time (no coordinated
omission). One asyncio loop in its own process, so the client's costs never share a GIL
with the server's, and its timestamps are not delayed by threads contending for one.

Keep-alive connections are reused; when every open connection is busy a new one is opened,
so a slow reply never delays the next scheduled request.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import multiprocessing
import multiprocessing.connection
import resource
import time
from collections.abc import Sequence
from dataclasses import dataclass

logger = logging.getLogger(__name__)
CONNECT_TIMEOUT_S = 5.0
REPLY_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class Request:
    name: str  # the endpoint's label in the results
    path: str
    headers: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Sample:
    name: str
    offset_s: float  # scheduled send time, from the start of the run
    latency_ms: float
    status: int  # 0: no reply (connection error or timeout)


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def get(self, request: Request, host: str) -> int:
        head = [f"GET {request.path} HTTP/1.1", f"Host: {host}"]
        head += [f"{k}: {v}" for k, v in request.headers]
        self.writer.write(("\r\n".join(head) + "\r\n\r\n").encode())
        status_line = await self.reader.readline()
        status = int(status_line.split()[1])
        length = 0
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        await self.reader.readexactly(length)
        return status

    def close(self) -> None:
        self.writer.close()


async def _run(host: str, port: int, schedule: Sequence[tuple[float, Request]]
               ) -> list[Sample]:
    idle: list[_Connection] = []
    samples: list[Sample] = []
    pending: set[asyncio.Task[None]] = set()

    async def one(request: Request, offset: float, scheduled: float) -> None:
        status = 0
        # A kept-alive connection the server has since closed (idle timeout) fails before
        # any reply; like any HTTP client, retry such a GET once on a new connection.
        for reused in (bool(idle), False):
            conn = idle.pop() if reused else None
            try:
                if conn is None:
                    reader, writer = await asyncio.wait_for(
                        asyncio.open_connection(host, port), CONNECT_TIMEOUT_S)
                    conn = _Connection(reader, writer)
                status = await asyncio.wait_for(conn.get(request, host), REPLY_TIMEOUT_S)
                idle.append(conn)
                break
            except (OSError, ValueError, IndexError, asyncio.IncompleteReadError) as exc:
                if conn is not None:
                    conn.close()
                if not reused:
                    logger.warning("%s %s: %r", request.name, request.path, exc)
            except TimeoutError:
                if conn is not None:
                    conn.close()
                break
        samples.append(Sample(request.name, offset, (time.perf_counter() - scheduled) * 1000,
                              status))

    start = time.perf_counter() + 0.05
    for offset, request in schedule:
        scheduled = start + offset
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(one(request, offset, scheduled))
        pending.add(task)
        task.add_done_callback(pending.discard)
    if pending:
        await asyncio.wait(pending)
    for conn in idle:
        conn.close()
    return samples


def fixed_rate_schedule(requests: Sequence[Request], rate: float) -> list[tuple[float, Request]]:
    """Send times (seconds from the start) at exactly `rate` per second."""
    return [(n / rate, request) for n, request in enumerate(requests)]


def _child(host: str, port: int, schedule: list[tuple[float, Request]],
           out: multiprocessing.connection.Connection) -> None:
    try:
        import uvloop  # part of uvicorn[standard]; a cheaper loop keeps the client light

        uvloop.install()
    except ImportError:
        pass
    before = _cpu_s()
    # A full collection over the growing list of samples paused this loop for up to 300 ms,
    # which would be counted as the server's latency; a run's garbage fits in memory.
    gc.freeze()
    gc.disable()
    samples = asyncio.run(_run(host, port, schedule))
    gc.enable()
    out.send(LoadResult(samples, _cpu_s() - before))
    out.close()


@dataclass(frozen=True)
class LoadResult:
    samples: list[Sample]
    cpu_s: float  # the load generator's own CPU time while it played the schedule


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_load(host: str, port: int, schedule: list[tuple[float, Request]]) -> LoadResult:
    """Play `schedule` against host:port from a separate process."""
    context = multiprocessing.get_context("spawn")
    receive, send = context.Pipe(duplex=False)
    process = context.Process(target=_child, args=(host, port, schedule, send), daemon=True)
    process.start()
    send.close()
    try:
        result: LoadResult = receive.recv()
    finally:
        process.join()
    return result
