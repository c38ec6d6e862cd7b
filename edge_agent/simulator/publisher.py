"""A QoS 1 MQTT publisher with flow control: at most a window of unacknowledged messages, so
"as fast as the broker takes it" means exactly that, with bounded memory.

Single-threaded and batched, because the simulator is the load generator while the HTTP
server is benchmarked on the same small machine and every CPU cycle it spends is stolen
from the server: `publish_batch` writes a batch of messages with one `sendall` and reads
whatever PUBACKs have arrived with one non-blocking `recv`; there is no network thread to
wake per message (see `mqtt_packets` for why not paho). The caller's own loop is the
network loop: it must call `publish_batch`, `poll` or `flush` now and then (every few
seconds at least) so PUBACKs are read and keep-alives sent.

Speaks MQTT 3.1.1, which Mosquitto and the embedded amqtt broker both accept; a publisher
needs nothing from MQTT 5. When the connection drops it reconnects with a backoff and resends
what was not acknowledged (DUP set): at-least-once, and consumers drop duplicates by event id.
"""

from __future__ import annotations

import contextlib
import logging
import select
import socket
import ssl
import threading
import time
import uuid
from collections.abc import Iterable
from types import TracebackType
from typing import Self

from edge_agent.simulator import mqtt_packets as packets

logger = logging.getLogger(__name__)

# Unacknowledged QoS 1 messages allowed in flight: deep enough to keep the pipe full at
# tens of thousands of messages/s on localhost, shallow enough to bound memory.
MAX_UNACKED = 2000
CONNECT_TIMEOUT_S = 10.0
KEEPALIVE_S = 30
# A PINGREQ goes out after this long without sending anything, well inside the keep-alive
# (the broker drops a client silent for 1.5 × keep-alive).
PING_AFTER_S = KEEPALIVE_S / 2
# Waits for acknowledgements wake up this often to notice a cancellation.
WAIT_SLICE_S = 0.2
# Reconnect backoff when the broker goes away mid-run: doubles from min to max.
RECONNECT_MIN_S, RECONNECT_MAX_S = 0.5, 10.0
# A send that cannot make progress this long means the broker is gone.
IO_TIMEOUT_S = 10.0
RECV_BYTES = 65536
# Sends are chunked so a huge as-fast-as-possible batch does not build one giant buffer.
SEND_CHUNK_BYTES = 256 * 1024


class PublisherError(RuntimeError):
    """The broker could not be reached or refused the connection."""


class _ConnectionLost(Exception):
    """The socket failed or the broker broke protocol; the publisher reconnects."""


class MqttPublisher:
    """Not thread-safe: one thread publishes, polls, flushes and closes."""

    protocol = packets.PROTOCOL_LEVEL_311

    def __init__(self, host: str, port: int, *, client_id: str | None = None,
                 max_unacked: int = MAX_UNACKED, username: str | None = None,
                 password: str | None = None, tls: bool = False) -> None:
        if not 0 < max_unacked < packets.MAX_PACKET_ID:
            raise ValueError("max_unacked must be between 1 and 65534")
        self.host, self.port, self.tls = host, port, tls
        self.client_id = client_id or f"simulator-{uuid.uuid4().hex[:12]}"
        self.max_unacked = max_unacked
        self._credentials = (username, password)
        self._sock: socket.socket | None = None
        self._inbox = bytearray()
        # Packet id → encoded PUBLISH, oldest first: what a reconnect resends.
        self._unacked: dict[int, bytes] = {}
        self._next_id = 0
        self._last_send = 0.0
        self._started = False  # connect() succeeded once: later losses are reconnected
        self._retry_at = 0.0
        self._backoff = RECONNECT_MIN_S

    # ------------------------------------------------------------------ lifecycle
    def connect(self, timeout: float = CONNECT_TIMEOUT_S) -> Self:
        try:
            self._open(timeout)
        except OSError as exc:
            raise PublisherError(f"cannot reach MQTT broker {self.host}:{self.port}: {exc}") \
                from exc
        except _ConnectionLost as exc:
            raise PublisherError(f"MQTT broker {self.host}:{self.port} refused the connection: "
                                 f"{exc}") from exc
        self._started = True
        logger.info("publishing to %s:%d as %s (MQTT 3.1.1)", self.host, self.port,
                    self.client_id)
        return self

    def close(self, flush_timeout: float = 10.0) -> None:
        if not self._started:
            return
        if not self.flush(flush_timeout):
            logger.warning("closing with %d messages unacknowledged", self.unacked)
        self._started = False
        sock, self._sock = self._sock, None
        if sock is not None:
            with contextlib.suppress(OSError):  # going away anyway
                sock.sendall(packets.DISCONNECT_PACKET)
            sock.close()

    def __enter__(self) -> Self:
        return self.connect()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    # ------------------------------------------------------------------ publishing
    @property
    def unacked(self) -> int:
        return len(self._unacked)

    def publish(self, topic: str, payload: bytes, cancel: threading.Event | None = None) -> None:
        """Publish one message at QoS 1 (see `publish_batch`)."""
        self.publish_batch(((topic, payload),), cancel=cancel)

    def publish_batch(self, messages: Iterable[tuple[str, bytes]],
                      cancel: threading.Event | None = None) -> None:
        """Publish `(topic, payload)` pairs at QoS 1 and read the acknowledgements that have
        arrived. Blocks while `max_unacked` messages await the broker's PUBACK (a slow broker,
        or one that went away), unless `cancel` is set meanwhile: then the rest are queued
        anyway and go out once the broker is back."""
        if not self._started:
            raise PublisherError("publisher is not connected")
        out: list[bytes] = []
        size = 0
        try:
            for topic, payload in messages:
                if len(self._unacked) >= self.max_unacked:
                    self._send(out)
                    out, size = [], 0
                    self._wait_for_room(cancel)
                packet_id = self._new_packet_id()
                packet = packets.publish_packet(topic.encode(), packet_id, payload)
                self._unacked[packet_id] = packet
                out.append(packet)
                size += len(packet)
                if size >= SEND_CHUNK_BYTES:
                    self._send(out)
                    out, size = [], 0
        finally:  # what was accepted goes out even if a later message is refused
            self._send(out)
        self.poll()

    def poll(self) -> None:
        """Read the PUBACKs that have arrived, keep the connection alive, reconnect if it
        dropped. Never blocks for long."""
        if not self._started:
            return
        if self._sock is None:
            self._reconnect_if_due()
            return
        try:
            self._read(0.0)
            if time.monotonic() - self._last_send >= PING_AFTER_S:
                self._sendall(packets.PINGREQ_PACKET)
        except _ConnectionLost as exc:
            self._lost(exc)

    def flush(self, timeout: float | None = 10.0) -> bool:
        """Wait until every published message is acknowledged; False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self._unacked:
            remaining = WAIT_SLICE_S if deadline is None else deadline - time.monotonic()
            if remaining <= 0 or not self._started:
                return False
            self._wait(min(remaining, WAIT_SLICE_S))
        return True

    # ------------------------------------------------------------------ internals
    def _new_packet_id(self) -> int:
        # Ids cycle through 1..65535, skipping any still awaiting its PUBACK.
        while True:
            self._next_id = self._next_id % packets.MAX_PACKET_ID + 1
            if self._next_id not in self._unacked:
                return self._next_id

    def _wait_for_room(self, cancel: threading.Event | None) -> None:
        while len(self._unacked) >= self.max_unacked:
            if cancel is not None and cancel.is_set():
                return
            self._wait(WAIT_SLICE_S)

    def _wait(self, timeout: float) -> None:
        """Block up to `timeout` for acknowledgements (or until a reconnect is due)."""
        if self._sock is None:
            time.sleep(max(0.0, min(timeout, self._retry_at - time.monotonic())))
            self._reconnect_if_due()
            return
        try:
            self._read(timeout)
        except _ConnectionLost as exc:
            self._lost(exc)

    def _send(self, out: list[bytes]) -> None:
        if not out or self._sock is None:
            return  # while disconnected they wait in `_unacked` for the reconnect
        try:
            self._sendall(b"".join(out))
        except _ConnectionLost as exc:
            self._lost(exc)

    def _sendall(self, data: bytes) -> None:
        assert self._sock is not None
        try:
            self._sock.sendall(data)
        except OSError as exc:  # includes timeouts and TLS errors
            raise _ConnectionLost(f"send failed: {exc}") from exc
        self._last_send = time.monotonic()

    def _read(self, timeout: float) -> None:
        """Read what the broker sent (waiting up to `timeout` for the first byte)."""
        sock = self._sock
        assert sock is not None
        # TLS can hold decrypted bytes that select() does not see.
        pending = isinstance(sock, ssl.SSLSocket) and sock.pending() > 0
        if not pending and not select.select((sock,), (), (), timeout)[0]:
            return
        try:
            data = sock.recv(RECV_BYTES)
        except OSError as exc:
            raise _ConnectionLost(f"receive failed: {exc}") from exc
        if not data:
            raise _ConnectionLost("the broker closed the connection")
        self._inbox += data
        self._handle(self._inbox)

    def _handle(self, inbox: bytearray) -> None:
        try:
            received = packets.split_packets(inbox)
            for kind, body in received:
                if kind == packets.PUBACK:
                    self._unacked.pop(packets.packet_id_of(body), None)
                # PINGRESP needs nothing: any byte from the broker shows the link is alive.
        except packets.ProtocolError as exc:
            raise _ConnectionLost(f"protocol error: {exc}") from exc

    def _lost(self, exc: _ConnectionLost) -> None:
        logger.warning("disconnected from broker %s:%d (%s); reconnecting, %d messages to "
                       "resend", self.host, self.port, exc, len(self._unacked))
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        self._inbox.clear()
        self._backoff = RECONNECT_MIN_S
        self._retry_at = time.monotonic() + self._backoff

    def _reconnect_if_due(self) -> None:
        if time.monotonic() < self._retry_at:
            return
        try:
            self._open(CONNECT_TIMEOUT_S)
            # Oldest first, flagged as possibly seen before.
            self._sendall(b"".join(packets.as_duplicate(p) for p in self._unacked.values()))
        except (OSError, _ConnectionLost) as exc:
            if self._sock is not None:
                self._sock.close()
                self._sock = None
            self._backoff = min(self._backoff * 2, RECONNECT_MAX_S)
            self._retry_at = time.monotonic() + self._backoff
            logger.info("reconnect to %s:%d failed (%s); next try in %.1f s", self.host,
                        self.port, exc, self._backoff)
            return
        logger.info("reconnected to %s:%d; resent %d messages", self.host, self.port,
                    len(self._unacked))

    def _open(self, timeout: float) -> None:
        """Connect, send CONNECT and wait for an accepting CONNACK. OSError: unreachable;
        _ConnectionLost: refused or no answer."""
        sock = socket.create_connection((self.host, self.port), timeout=timeout)
        try:
            # Batches are written whole: Nagle would only hold the last segment back.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.tls:
                # The system's CA store: mqtts:// brokers need a trusted certificate.
                sock = ssl.create_default_context().wrap_socket(sock, server_hostname=self.host)
            username, password = self._credentials
            sock.sendall(packets.connect_packet(self.client_id, keepalive=KEEPALIVE_S,
                                                username=username, password=password))
            code = self._await_connack(sock, timeout)
        except BaseException:
            sock.close()
            raise
        if code != 0:
            sock.close()
            raise _ConnectionLost(packets.CONNACK_REASONS.get(code, f"CONNACK code {code}"))
        sock.settimeout(IO_TIMEOUT_S)
        self._sock = sock
        self._inbox.clear()
        self._last_send = time.monotonic()

    @staticmethod
    def _await_connack(sock: socket.socket, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        inbox = bytearray()
        while True:
            sock.settimeout(max(0.001, deadline - time.monotonic()))
            try:
                data = sock.recv(RECV_BYTES)
            except TimeoutError:
                raise _ConnectionLost("no CONNACK") from None
            if not data:
                raise _ConnectionLost("connection closed before CONNACK")
            inbox += data
            try:
                for kind, body in packets.split_packets(inbox):
                    if kind == packets.CONNACK:
                        return packets.connack_code(body)
            except packets.ProtocolError as exc:
                raise _ConnectionLost(f"protocol error: {exc}") from exc
