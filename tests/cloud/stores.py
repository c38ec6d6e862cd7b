"""Running the whole link in tests: a store's agent as a real process with its cloud
credentials, a lake worker process, provisioning through moto."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from cloud_sync.fleet.provision import OwnCACertificates, provision_store
from cloud_sync.lake.store import Lake
from cloud_sync.local.process import end_process
from cloud_sync.local.stack import LocalCloud
from edge_agent.broker import MosquittoBroker, wait_for_port

# A store's agent or a lake worker may take this long to finish its batch and exit.
PROCESS_TIMEOUT_S = 30.0
KEY = bytes(range(32))  # the chain's pseudonym key in these tests
TS = "2026-11-21T09:30:00Z"


class RunningAgent:
    def __init__(self, store: str, broker: MosquittoBroker, db: Path, credentials: Path,
                 port: int) -> None:
        self.store, self.broker, self.db, self.credentials, self.port = (
            store, broker, db, credentials, port)
        self.process: subprocess.Popen[bytes] | None = None
        self.settings: dict[str, str] = {}  # EDGE_* settings for the next start

    def start(self) -> None:
        env = {**os.environ, "EDGE_CLOUD_CREDENTIALS": str(self.credentials),
               "EDGE_BATCH_MAX_WAIT_MS": "5",
               **{f"EDGE_{k.upper()}": v for k, v in self.settings.items()}}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "edge_agent.cli", "run", "--store-id", self.store,
             "--broker", self.broker.url, "--db", str(self.db), "--port", str(self.port),
             "--log-level", "WARNING"], env=env, stdin=subprocess.DEVNULL)
        assert wait_for_port("127.0.0.1", self.port, timeout=60), "the agent did not listen"

    def readyz(self) -> tuple[int, dict[str, Any]]:
        response = httpx.get(f"http://127.0.0.1:{self.port}/readyz", timeout=10)
        return response.status_code, response.json()

    def kill(self) -> None:
        end_process(self.process, signal.SIGKILL, PROCESS_TIMEOUT_S)

    def stop(self) -> None:
        end_process(self.process, signal.SIGTERM, PROCESS_TIMEOUT_S)


class LakeWorkerProcess:
    def __init__(self, cloud: LocalCloud, client_id: str) -> None:
        self.cloud, self.client_id = cloud, client_id
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "cloud_sync.cli", "lake", "worker", "--local",
             str(self.cloud.directory), "--client-id", self.client_id],
            stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
        assert self.process.stdout is not None
        assert b"writing to" in self.process.stdout.readline(), "the lake worker did not start"

    def kill(self) -> None:
        end_process(self.process, signal.SIGKILL, PROCESS_TIMEOUT_S)

    def stop(self) -> None:
        end_process(self.process, signal.SIGTERM, PROCESS_TIMEOUT_S)


def provision(cloud: LocalCloud, store: str, out: Path) -> Path:
    provision_store(cloud.boto3_client("iot"), store, out, endpoint_host=cloud.broker.host,
                    endpoint_port=cloud.broker.port, issuer=OwnCACertificates(cloud.ca),
                    pseudonym_key=KEY)
    return out / store


def lake_ids(lake: Lake, store: str) -> list[str]:
    return lake.read(store_id=store)["event_id"].to_pylist()


def served_version(agent: RunningAgent, admin_key: str) -> str | None:
    """The model version the agent serves (None: none, or not answering yet)."""
    response = httpx.get(f"http://127.0.0.1:{agent.port}/v1/admin/models",
                         headers={"X-API-Key": admin_key}, timeout=10)
    active = response.json().get("active") if response.status_code == 200 else None
    return active["version"] if active else None


@contextmanager
def shopper_traffic(agent: RunningAgent, kiosk_key: str) -> Iterator[None]:
    """Shoppers asking the agent for recommendations, back to back, until the block ends:
    the traffic a release's probation measures."""
    stop = threading.Event()

    def shoppers() -> None:
        while not stop.is_set():
            httpx.get(f"http://127.0.0.1:{agent.port}/v1/shoppers/C-1/recommendations",
                      headers={"X-API-Key": kiosk_key}, timeout=10)

    traffic = threading.Thread(target=shoppers)
    traffic.start()
    try:
        yield
    finally:
        stop.set()
        traffic.join()
