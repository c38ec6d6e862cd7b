"""HTTP connections are bounded before any request is parsed: at a 1,024 file limit (systemd's
usual), 1,100 idle or half-sent connections leave `/healthz` answering within a second and
the database working; a slowloris that never finishes its request head is closed with 408,
a request head past the size limit with 431.
The agent is a real process with its file limit set as systemd would set it."""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from edge_agent.broker import MosquittoBroker, free_port, wait_for_port
from tests.ingestion.conftest import STORE, Publisher, count, pos_event, wait_until

FILE_LIMIT = 1024
IDLE_CONNECTIONS = 1100
HEADER_TIMEOUT_S = 3
KIOSK_KEY = "kiosk-key-0123456789"
# Far below what a slowloris would need to hold a connection for ever.
ANSWER_WITHIN_S = 1.0


@dataclass
class RunningAgent:
    pid: int
    url: str
    db: Path
    log: Path


def limit_files() -> None:  # in the child, before exec: what LimitNOFILE=1024 does
    resource.setrlimit(resource.RLIMIT_NOFILE, (FILE_LIMIT, FILE_LIMIT))


@pytest.fixture
def agent(mosquitto_broker: MosquittoBroker, tmp_path: Path) -> Iterator[RunningAgent]:
    port = free_port()
    log = tmp_path / "agent.log"
    env = {**os.environ, "EDGE_API_KEYS": f'[{{"name": "k", "role": "kiosk", "key":'
                                          f' "{KIOSK_KEY}"}}]',
           "EDGE_HTTP_HEADER_TIMEOUT_S": str(HEADER_TIMEOUT_S)}
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "edge_agent.cli", "run", "--store-id", STORE,
             "--broker", mosquitto_broker.url, "--db", str(tmp_path / "edge.db"),
             "--port", str(port), "--log-level", "WARNING"],
            env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            preexec_fn=limit_files)
    try:
        assert wait_for_port("127.0.0.1", port, timeout=60), "the agent did not listen"
        yield RunningAgent(process.pid, f"http://127.0.0.1:{port}", tmp_path / "edge.db", log)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def enough_files_here() -> None:
    """This test process holds 1,100 sockets too: raise its own soft limit if need be."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = IDLE_CONNECTIONS + 200
    if soft < wanted:
        if hard != resource.RLIM_INFINITY and hard < wanted:
            pytest.skip(f"this shell's hard file limit ({hard}) is below {wanted}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


def open_idle_connections(port: int, n: int) -> list[socket.socket]:
    """n connections: half send nothing, half the start of a request head and no more."""
    sockets = []
    for i in range(n):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.settimeout(5)
        try:
            sock.connect(("127.0.0.1", port))
            if i % 2:
                sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        except OSError:
            sock.close()  # refused or reset at once: the server shedding load is fine
            continue
        sockets.append(sock)
    return sockets


def timed_get(url: str, **kwargs: object) -> tuple[httpx.Response, float]:
    start = time.monotonic()
    response = httpx.get(url, timeout=10, **kwargs)  # type: ignore[arg-type]
    return response, time.monotonic() - start


def test_1100_idle_connections_at_a_1024_file_limit_leave_the_agent_answering(
        agent: RunningAgent, mosquitto_broker: MosquittoBroker,
        enough_files_here: None) -> None:
    port = int(agent.url.rsplit(":", 1)[1])
    assert int(Path(f"/proc/{agent.pid}/limits").read_text().split("Max open files")[1]
               .split()[0]) == FILE_LIMIT
    # Connected first: paho's loop uses select(), which takes no descriptor above 1,023.
    publisher = Publisher(mosquitto_broker.host, mosquitto_broker.port)
    sockets = open_idle_connections(port, IDLE_CONNECTIONS)
    try:
        time.sleep(0.5)  # let the agent take them all in
        healthz, took = timed_get(f"{agent.url}/healthz")
        assert healthz.status_code == 200 and took < ANSWER_WITHIN_S, took
        ready, took = timed_get(f"{agent.url}/readyz")
        assert ready.json()["checks"]["database"] is True and took < ANSWER_WITHIN_S
        trending, _ = timed_get(f"{agent.url}/v1/trending", headers={"X-API-Key": KIOSK_KEY})
        assert trending.status_code == 200, trending.text
        # Ingestion goes on: a sale published now is committed.
        sale = pos_event()
        publisher.event(sale)
        publisher.flush()
        wait_until(lambda: count(agent.db, "SELECT count(*) FROM events WHERE event_id = ?",
                                 sale["event_id"]) == 1, what="the sale committed")
        held = len(os.listdir(f"/proc/{agent.pid}/fd"))
        assert held < FILE_LIMIT - 100, f"the agent holds {held} descriptors"
    finally:
        publisher.close()
        for sock in sockets:
            sock.close()
    log = agent.log.read_text()
    assert "unable to open database file" not in log
    assert "Too many open files" not in log


def test_a_slowloris_gets_408_after_the_header_timeout_and_a_huge_head_431(
        agent: RunningAgent) -> None:
    port = int(agent.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=HEADER_TIMEOUT_S * 3) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\n")
        start = time.monotonic()
        answer = b""
        # One header line every half second: each would have reset uvicorn's own timer.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            while time.monotonic() - start < HEADER_TIMEOUT_S * 2:
                sock.sendall(b"X-Slow: 1\r\n")
                sock.settimeout(0.5)
                with contextlib.suppress(TimeoutError):
                    chunk = sock.recv(1024)
                    answer += chunk
                    if not chunk or answer.endswith(b"\r\n\r\n"):
                        break
        closed_after = time.monotonic() - start
    assert answer.startswith(b"HTTP/1.1 408"), answer
    assert HEADER_TIMEOUT_S - 0.5 < closed_after < HEADER_TIMEOUT_S + 1.5
    # A head larger than http_max_header_bytes (16 KB), sent fast: 431, closed.
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(b"GET /healthz HTTP/1.1\r\nX-Big: " + b"a" * 40_000)
        assert sock.recv(1024).startswith(b"HTTP/1.1 431")
    # The agent goes on answering.
    assert httpx.get(f"{agent.url}/healthz", timeout=5).status_code == 200
