"""Request bodies are bounded while they are read: a 200 MB body with no API key is refused
with 413 before it is parsed or held, whether it declares its length or arrives chunked,
and the agent's memory stays where it was (measured on the real process)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from edge_agent.broker import MosquittoBroker, free_port, wait_for_port

BIG = 200 * 2**20
CHUNK = 2**20
# Memory the agent may gain while refusing both bodies: far below the body's 200 MB.
ALLOWED_GROWTH = 32 * 2**20
BODY_TIMEOUT_S = 2.0


@pytest.fixture
def agent(mosquitto_broker: MosquittoBroker, tmp_path: Path) -> Iterator[tuple[int, int]]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "edge_agent.cli", "run", "--store-id", "store-body",
         "--broker", mosquitto_broker.url, "--db", str(tmp_path / "edge.db"),
         "--port", str(port), "--log-level", "WARNING"],
        env={**os.environ, "EDGE_API_KEYS": '[{"name": "k", "role": "kiosk",'
                                            ' "key": "kiosk-key-0123456789"}]',
             "EDGE_HTTP_BODY_TIMEOUT_S": str(BODY_TIMEOUT_S)},
        stdin=subprocess.DEVNULL)
    try:
        assert wait_for_port("127.0.0.1", port, timeout=60), "the agent did not listen"
        yield process.pid, port
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(30)


def rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def send_body(port: int, headers: str, chunked: bool) -> bytes:
    """Send up to 200 MB of body as fast as the agent takes it; return its answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(headers.encode())
        block = b"x" * CHUNK
        sent = 0
        try:
            while sent < BIG:
                sock.sendall(f"{CHUNK:x}\r\n".encode() + block + b"\r\n" if chunked else block)
                sent += CHUNK
        except (BrokenPipeError, ConnectionResetError):
            pass  # the agent answered and closed: what we want
        answer = b""
        try:
            while chunk := sock.recv(65536):
                answer += chunk
        except (ConnectionResetError, TimeoutError):
            pass
    return answer


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_200_mb_body_without_a_key_is_refused_unread(agent: tuple[int, int],
                                                       chunked: bool) -> None:
    pid, port = agent
    httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=10)
    before = rss(pid)
    length = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {BIG}"
    answer = send_body(port, f"POST /v1/feedback HTTP/1.1\r\nHost: x\r\nContent-Type:"
                             f" application/json\r\n{length}\r\n\r\n", chunked)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b'"payload_too_large"' in answer and b'"field":"body"' in answer
    assert rss(pid) - before < ALLOWED_GROWTH
    # And the agent goes on answering.
    assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=10).status_code == 200


def test_a_body_sent_a_byte_at_a_time_is_cut_off_with_408(agent: tuple[int, int]) -> None:
    """Slowloris on the body: the head arrives at once (the connection guard's bound), then
    a byte every half second. The body's deadline answers 408 and closes the connection."""
    _pid, port = agent
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(b"POST /v1/feedback HTTP/1.1\r\nHost: x\r\nX-API-Key: kiosk-key-0123456789"
                     b"\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n")
        started = time.monotonic()
        answer = b""
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            while time.monotonic() - started < 10 * BODY_TIMEOUT_S:
                sock.sendall(b"{")
                sock.settimeout(0.5)
                try:
                    chunk = sock.recv(65536)
                except TimeoutError:
                    continue
                if not chunk:
                    break
                answer += chunk
        elapsed = time.monotonic() - started
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert b'"request_timeout"' in answer and b'"field":"body"' in answer
    assert BODY_TIMEOUT_S <= elapsed < 5 * BODY_TIMEOUT_S
    assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=10).status_code == 200

