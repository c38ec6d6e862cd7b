"""The local stand-in for the AWS control plane and S3: moto's server as a subprocess (real
HTTP), called with real boto3 through `endpoint_url`, so signing and serialization are the
production code paths. With `JobsServiceOptions`, the same process also answers the device
side of IoT Jobs on the local broker (`cloud_sync.local.moto_process`)."""

from __future__ import annotations

import contextlib
import logging
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import boto3
from botocore.config import Config

from cloud_sync.local.broker import LOCALHOST, free_port
from cloud_sync.local.process import end_process

logger = logging.getLogger(__name__)

DEFAULT_REGION = "eu-west-1"
# moto accepts any credentials; these make sure boto3 never looks for real ones.
DUMMY_ACCESS_KEY = "testing"
DUMMY_SECRET_KEY = "testing"
# moto imports every service's models at start: a few seconds on a loaded machine.
START_TIMEOUT_S = 30.0
LOG_TAIL_LINES = 20


class MotoServerError(RuntimeError):
    """moto's server could not be started or did not answer in time."""


@dataclass(frozen=True)
class JobsServiceOptions:
    """The jobs device service in moto's process: its broker credentials directory
    (`link.json`), moto's region for IoT, and the local-only length of a job "minute"."""

    credentials_dir: Path
    region: str = DEFAULT_REGION
    seconds_per_minute: float = 60.0

    def arguments(self) -> list[str]:
        return ["--jobs-credentials", str(self.credentials_dir), "--region", self.region,
                "--jobs-seconds-per-minute", repr(self.seconds_per_minute)]


def boto3_client(service: str, endpoint_url: str, region: str = DEFAULT_REGION) -> Any:
    """A boto3 client for `service` at a local endpoint, with dummy credentials."""
    return boto3.session.Session().client(
        service, endpoint_url=endpoint_url, region_name=region,
        aws_access_key_id=DUMMY_ACCESS_KEY, aws_secret_access_key=DUMMY_SECRET_KEY,
        # Fail fast against a local process: no long retry budget for a dead stand-in.
        config=Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=5,
                      read_timeout=30))


class MotoServer:
    """moto's server on 127.0.0.1:`port` (a free port unless given), with the IoT Jobs
    device service when `jobs` is given (its credentials must exist at `start()`)."""

    def __init__(self, port: int = 0, log_path: Path | None = None,
                 jobs: JobsServiceOptions | None = None) -> None:
        self.host = LOCALHOST
        self.port = port or free_port()
        self.log_path = log_path
        self.jobs = jobs
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def boto3_client(self, service: str, region: str = DEFAULT_REGION) -> Any:
        return boto3_client(service, self.endpoint_url, region)

    def start(self) -> Self:
        if self.running:
            return self
        output: Any = subprocess.DEVNULL
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            output = self.log_path.open("ab")
        try:
            command = [sys.executable, "-m", "cloud_sync.local.moto_process",
                       "-H", self.host, "-p", str(self.port)]
            if self.jobs is not None:
                command += self.jobs.arguments()
            self._process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=output, stderr=output,
                start_new_session=True)
        finally:
            if output is not subprocess.DEVNULL:
                output.close()
        self._wait_ready()
        logger.info("moto server on %s", self.endpoint_url)
        return self

    def _answers(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.endpoint_url}/moto-api/data.json", timeout=1):
                return True
        except (urllib.error.URLError, OSError):
            return False

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline and self.running:
            if self._answers():
                return
            time.sleep(0.1)
        what = "exited at start" if not self.running else f"no answer in {START_TIMEOUT_S}s"
        self.stop()
        raise MotoServerError(f"moto server on port {self.port}: {what}; {self._log_tail()}")

    def _log_tail(self) -> str:
        if self.log_path is None:
            return "no log kept"
        with contextlib.suppress(OSError):
            lines = self.log_path.read_text(errors="replace").splitlines()[-LOG_TAIL_LINES:]
            return "log tail:\n" + "\n".join(lines)
        return "log unreadable"

    def stop(self) -> None:
        process, self._process = self._process, None
        end_process(process, signal.SIGTERM)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
