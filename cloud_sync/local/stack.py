"""The whole local cloud in one object: a CA, the TLS broker standing in for AWS IoT Core
and moto standing in for S3 and the IoT control plane, with the device side of IoT Jobs in
moto's process (`cloud_sync.local.jobs`, on the broker as `JOBS_IDENTITY`). `up()` writes
`local-cloud.json` into its directory so other processes (the demo, `cloud-sync fleet
provision --local DIR`) can `LocalCloud.attach(DIR)` to a running stack."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
from dataclasses import asdict, dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from cloud_sync.link.credentials import LinkCredentials
from cloud_sync.local.broker import JOBS_IDENTITY, LOCALHOST, TlsBroker, issue_credentials
from cloud_sync.local.moto_server import (
    DEFAULT_REGION,
    JobsServiceOptions,
    MotoServer,
    boto3_client,
)
from cloud_sync.local.pki import LocalCA

logger = logging.getLogger(__name__)

STACK_FILE = "local-cloud.json"
PORT_FILE = "broker-port"  # kept after `down()`, unlike STACK_FILE
# The S3 bucket of the event lake (Parquet), created in moto at `up()`.
LAKE_BUCKET = "instore-lake"
# Local only: how many seconds a job "minute" lasts (rollout rates, timeouts) when the
# constructor is not told; tests shrink it. IoT Jobs itself has no such setting.
JOBS_SECONDS_PER_MINUTE_ENV = "CLOUD_SYNC_LOCAL_JOBS_SECONDS_PER_MINUTE"
DEFAULT_JOBS_SECONDS_PER_MINUTE = 60.0


class LocalCloudError(RuntimeError):
    """No local cloud runs in a directory, or it could not be brought up."""


@dataclass(frozen=True)
class LocalCloudInfo:
    """Where a running local cloud answers; what `local-cloud.json` holds."""

    directory: Path
    broker_host: str
    broker_port: int
    ca_path: Path
    moto_endpoint: str
    region: str
    pid: int

    def boto3_client(self, service: str) -> Any:
        return boto3_client(service, self.moto_endpoint, self.region)

    def open_ca(self) -> LocalCA:
        return LocalCA.open_or_create(self.ca_path.parent)

    def credentials(self, identity: str, client_dir: Path | None = None) -> LinkCredentials:
        """A client certificate with CN = `identity` for this running stack's broker."""
        target = client_dir or self.directory / "broker" / "clients" / identity
        return issue_credentials(self.open_ca(), identity, self.broker_host, self.broker_port,
                                 target)

    def to_json(self) -> str:
        document = asdict(self)
        document.update(directory=str(self.directory), ca_path=str(self.ca_path))
        return json.dumps(document, indent=2) + "\n"


class LocalCloud:
    """CA + TLS broker + moto server, kept under one directory."""

    def __init__(self, directory: Path, region: str = DEFAULT_REGION,
                 jobs_seconds_per_minute: float | None = None) -> None:
        self.directory = Path(directory).resolve()
        self.region = region
        self.ca = LocalCA.open_or_create(self.directory / "ca")
        self.broker = TlsBroker(self.directory / "broker", self.ca, port=self._previous_port())
        self.jobs = JobsServiceOptions(
            self.directory / "broker" / "clients" / JOBS_IDENTITY, region,
            jobs_seconds_per_minute or _seconds_per_minute_from_env())
        self.moto = MotoServer(log_path=self.directory / "moto.log", jobs=self.jobs)

    def _previous_port(self) -> int:
        """The broker's port of an earlier run in this directory, if still free: credentials
        written then name it, and the broker's sessions on disk belong to it."""
        with contextlib.suppress(OSError, ValueError):
            port = int((self.directory / PORT_FILE).read_text())
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind((LOCALHOST, port))
            return port
        return 0  # a free one

    @property
    def info(self) -> LocalCloudInfo:
        return LocalCloudInfo(directory=self.directory, broker_host=self.broker.host,
                              broker_port=self.broker.port, ca_path=self.ca.ca_path,
                              moto_endpoint=self.moto.endpoint_url, region=self.region,
                              pid=os.getpid())

    def boto3_client(self, service: str) -> Any:
        return self.moto.boto3_client(service, self.region)

    def credentials(self, identity: str, client_dir: Path | None = None) -> LinkCredentials:
        """A client certificate straight from the local CA (no IoT registration)."""
        return self.broker.credentials(identity, client_dir)

    def up(self) -> Self:
        try:
            self.broker.start()
            # The jobs service's certificate, fresh for this run's broker port.
            self.broker.credentials(JOBS_IDENTITY, self.jobs.credentials_dir).write(
                self.jobs.credentials_dir)
            self.moto.start()
            s3 = self.boto3_client("s3")
            with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou):
                s3.create_bucket(Bucket=LAKE_BUCKET, CreateBucketConfiguration={
                    "LocationConstraint": self.region})
        except Exception:
            self.down()
            raise
        (self.directory / PORT_FILE).write_text(f"{self.broker.port}\n")
        path = self.directory / STACK_FILE
        tmp = path.with_suffix(".tmp")
        tmp.write_text(self.info.to_json())
        tmp.replace(path)
        logger.info("local cloud up in %s", self.directory)
        return self

    def down(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            (self.directory / STACK_FILE).unlink()
        self.moto.stop()
        self.broker.stop()

    @staticmethod
    def attach(directory: Path) -> LocalCloudInfo:
        """The endpoints of a local cloud another process runs in `directory`."""
        path = Path(directory) / STACK_FILE
        if not path.is_file():
            raise LocalCloudError(f"no local cloud is running in {directory} (no {path}); "
                                  f"start one with `cloud-sync local up --dir {directory}`")
        try:
            doc = json.loads(path.read_text())
            info = LocalCloudInfo(
                directory=Path(doc["directory"]), broker_host=str(doc["broker_host"]),
                broker_port=int(doc["broker_port"]), ca_path=Path(doc["ca_path"]),
                moto_endpoint=str(doc["moto_endpoint"]), region=str(doc["region"]),
                pid=int(doc["pid"]))
        except (ValueError, KeyError, TypeError) as exc:
            raise LocalCloudError(f"{path} is not a local cloud description ({exc})") from None
        if not _alive(info.pid):
            raise LocalCloudError(f"the local cloud in {directory} is gone (process {info.pid} "
                                  f"has exited); start it again with `cloud-sync local up`")
        return info

    def __enter__(self) -> Self:
        return self.up()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.down()


def _seconds_per_minute_from_env() -> float:
    raw = os.environ.get(JOBS_SECONDS_PER_MINUTE_ENV)
    if not raw:
        return DEFAULT_JOBS_SECONDS_PER_MINUTE
    try:
        value = float(raw)
    except ValueError:
        value = 0.0
    if value <= 0:
        raise LocalCloudError(f"{JOBS_SECONDS_PER_MINUTE_ENV} must be a positive number of "
                              f"seconds, not {raw!r}")
    return value


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive
    return True
