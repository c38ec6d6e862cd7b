"""HTTP connections bounded before any request is parsed: how many the process holds, how long
one may take to send a request's head, and how large that head may be.

uvicorn alone does not bound them: its keep-alive timeout starts only after a response and
is cancelled by the first byte of the next request, so a connection that sends nothing, or a
header line every few seconds (slowloris), is held for ever; `limit_concurrency` answers 503
only once a request's head is complete, and every held connection is a file descriptor. At
a 1,024 file limit 1,100 idle sockets took the API down and SQLite, needing a descriptor for
its files, logged "unable to open database file".

So each server's connections go through a `ConnectionGuard`:
- a connection must send a complete request head within `header_timeout_s` of opening, or
  of its previous response; partial bytes do not extend the deadline;
- a request head larger than `max_head_bytes` is answered 431 and closed;
- past `max_connections` (kept below the process's file limit, see `connection_limit`) the
  connection that has waited longest without a request is closed to make room, so a flood
  of idle sockets cannot keep a real request out; with none waiting, the new one is closed.
Connections in the middle of a request are never closed by the guard.
"""

from __future__ import annotations

import asyncio
import logging
import resource
from collections import OrderedDict
from typing import Any

logger = logging.getLogger(__name__)

# Descriptors kept free of HTTP connections: SQLite's database, WAL and shared-memory files
# for each reader, model files, Prometheus files, log files, pipes to the writer and the
# workers, the MQTT socket, and the accept burst before the guard closes the surplus.
FD_RESERVE = 256
# Below this a guard would refuse a busy store's own kiosks; a file limit this low is a
# misconfiguration that the service unit (LimitNOFILE) prevents.
MIN_CONNECTIONS = 32
TIMEOUT_RESPONSE = (b"HTTP/1.1 408 Request Timeout\r\nconnection: close\r\n"
                    b"content-length: 0\r\n\r\n")
TOO_LARGE_RESPONSE = (b"HTTP/1.1 431 Request Header Fields Too Large\r\nconnection: close\r\n"
                      b"content-length: 0\r\n\r\n")


def connection_limit(configured: int) -> int:
    """`configured`, lowered to keep FD_RESERVE descriptors of the soft file limit free."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return configured
    return max(MIN_CONNECTIONS, min(configured, soft - FD_RESERVE))


class ConnectionGuard:
    """The connections of one server process (all on its event loop's thread)."""

    def __init__(self, max_connections: int, header_timeout_s: float,
                 max_head_bytes: int) -> None:
        self.max_connections = max_connections
        self.header_timeout_s = header_timeout_s
        self.max_head_bytes = max_head_bytes
        self.live: set[Any] = set()
        # Connections waiting for a request head, longest-waiting first: who makes room.
        self.waiting: OrderedDict[Any, asyncio.TimerHandle] = OrderedDict()
        self.evicted = 0
        self.timed_out = 0

    def opened(self, conn: Any) -> None:
        self.live.add(conn)
        if len(self.live) > self.max_connections:
            if self.waiting:
                oldest, _ = next(iter(self.waiting.items()))
                self.evicted += 1
                self._close(oldest, None)
            else:  # every connection is in a request: the new one waits its turn elsewhere
                self._close(conn, None)
                return
        self.wait_for_head(conn)

    def wait_for_head(self, conn: Any) -> None:
        """`conn` is idle: its next request head must be complete before the deadline."""
        if conn in self.waiting or conn not in self.live:
            return
        conn.guard_head_bytes = 0
        self.waiting[conn] = conn.loop.call_later(self.header_timeout_s, self._expired, conn)

    def received(self, conn: Any, size: int) -> None:
        """Bytes arrived and were parsed: a request started, or the head grew."""
        if conn.in_request():
            self._stop_waiting(conn)
            return
        if conn in self.waiting:
            conn.guard_head_bytes += size
            if conn.guard_head_bytes > self.max_head_bytes:
                self._close(conn, TOO_LARGE_RESPONSE)

    def closed(self, conn: Any) -> None:
        self._stop_waiting(conn)
        self.live.discard(conn)

    def _expired(self, conn: Any) -> None:
        if conn in self.waiting and not conn.in_request():
            self.timed_out += 1
            self._close(conn, TIMEOUT_RESPONSE)

    def _stop_waiting(self, conn: Any) -> None:
        timer = self.waiting.pop(conn, None)
        if timer is not None:
            timer.cancel()

    def _close(self, conn: Any, answer: bytes | None) -> None:
        self._stop_waiting(conn)
        self.live.discard(conn)
        transport = conn.transport
        if transport is None or transport.is_closing():
            return
        if answer is not None:
            transport.write(answer)
            transport.close()  # after the answer is flushed
        else:
            transport.abort()  # the descriptor back at once: nothing to say to a flood


class GuardedProtocol:
    """Mixed in before uvicorn's HTTP protocol class (httptools or h11): both keep the
    request in hand as `self.cycle` and call `on_response_complete` after each response."""

    guard: ConnectionGuard
    guard_head_bytes = 0
    cycle: Any
    transport: Any
    loop: asyncio.AbstractEventLoop

    def in_request(self) -> bool:
        cycle = self.cycle
        return cycle is not None and not cycle.response_complete

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)  # type: ignore[misc]
        self.guard.opened(self)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)  # type: ignore[misc]
        self.guard.received(self, len(data))

    def on_response_complete(self) -> None:
        super().on_response_complete()  # type: ignore[misc]
        if not self.in_request():
            self.guard.wait_for_head(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.guard.closed(self)
        super().connection_lost(exc)  # type: ignore[misc]


def guarded_protocol_class(guard: ConnectionGuard) -> type[asyncio.Protocol]:
    """uvicorn's own choice of HTTP protocol (httptools when installed), guarded."""
    from uvicorn.protocols.http.auto import AutoHTTPProtocol

    return type(f"Guarded{AutoHTTPProtocol.__name__}", (GuardedProtocol, AutoHTTPProtocol),
                {"guard": guard})
