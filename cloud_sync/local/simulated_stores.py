"""Many simulated stores in one process, for rollout drills and benchmarks: the updater's side
of a model release without an agent.

Each store is provisioned like a real one (an IoT thing in the fleet group, a certificate
from the local CA), keeps one MQTT 5 connection (awsiotsdk) and a `JobsClient` on it. On
`notify-next`, and when it comes online, it takes the next execution, downloads the job
document's URL, checks the size and SHA-256, and reports `SUCCEEDED` with the health a
healthy store would show, click-through before and after the swap included. A store's
`Behaviour` turns it into a drill: refuse with a reason, report bad health or a collapsed
click-through, or stay offline until told.

Cheap by design: every connection shares awscrt's default event loop, and the blocking Jobs
requests and downloads of all stores run on one thread pool (a store never has two checks in
flight; a notification during a check asks for one more).
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
import urllib.request
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cloud_sync.fleet.provision import OwnCACertificates, provision_store
from cloud_sync.link.credentials import LinkCredentials
from cloud_sync.link.jobs import JobExecution, JobsClient, JobsError
from cloud_sync.link.mqtt import LinkClient, open_link
from cloud_sync.local.stack import LocalCloud
from cloud_sync.release.document import ROLLBACK, DocumentError, JobDocument, StatusDetails

logger = logging.getLogger(__name__)

# What a healthy store reports after its probation (numbers a real store's window shows).
HEALTHY_REQUESTS = 500
HEALTHY_P99_MS = 40.0
# Recommendation click-through a store sees, and its impressions on each side of the swap (a
# few hours of a kiosk; a wave of several stores pools past the controller's minimum).
HEALTHY_CTR = 0.08
HEALTHY_IMPRESSIONS = 400
# Blocking work (Jobs requests, downloads) of all stores shares this many threads: enough to
# keep the local Jobs service busy, few enough for two cores.
DEFAULT_WORKERS = 16
# Provisioning is a dozen moto calls and a key per store: a few in parallel.
PROVISION_WORKERS = 8
DOWNLOAD_TIMEOUT_S = 30.0
CONNECT_TIMEOUT_S = 30.0


@dataclass
class Behaviour:
    """How one simulated store answers a release (the default: a healthy store)."""

    fail_reason: str | None = None  # FAILED, stage "refused", with this reason
    error_rate: float = 0.0  # > the release's max_error_rate: bad health reported
    p99_ms: float = HEALTHY_P99_MS
    requests: int = HEALTHY_REQUESTS
    ctr_before: float = HEALTHY_CTR  # the previous version's, over the week before the swap
    ctr_after: float = HEALTHY_CTR  # the new version's, over the probation
    impressions: int = HEALTHY_IMPRESSIONS  # on each side
    offline: bool = False  # not connected until `go_online()`


@dataclass
class Outcome:
    job_id: str
    status: str
    version: str
    at: float  # time.time() when reported


class SimulatedStore:
    def __init__(self, credentials: LinkCredentials, pool: ThreadPoolExecutor,
                 behaviour: Behaviour | None = None) -> None:
        self.name = credentials.thing_name
        self.credentials = credentials
        self.behaviour = behaviour or Behaviour()
        self.serving: str | None = None
        self.outcomes: list[Outcome] = []
        self.bundles: dict[str, str] = {}  # version -> sha256 of the archive held
        self._pool = pool
        self._link: LinkClient | None = None
        self._jobs: JobsClient | None = None
        self._lock = threading.Lock()
        self._busy = False
        self._again = False
        self._closing = False

    @property
    def online(self) -> bool:
        return self._link is not None

    def go_online(self) -> None:
        """Connect (at once, not waiting for the broker) and look for work once connected."""
        if self._link is not None:
            return
        self._link = open_link(self.credentials, self.name)
        self._jobs = JobsClient(self._link)
        # The stream subscribes once the link is up (and again after a reconnect); its
        # first notification, or the check below, picks up what is pending.
        self._jobs.on_next_execution(lambda _execution: self.wake(), wait=False)
        self.wake()

    def go_offline(self) -> None:
        link, jobs = self._link, self._jobs
        self._link = self._jobs = None
        if jobs is not None:
            jobs.close()
        if link is not None:
            link.stop()

    def wake(self) -> None:
        """Schedule a check on the pool, or one more after the check running now."""
        with self._lock:
            if self._closing:
                return
            if self._busy:
                self._again = True
                return
            self._busy = True
        self._pool.submit(self._check_loop)

    # ------------------------------------------------------------------------ on the pool
    def _check_loop(self) -> None:
        while True:
            try:
                self._check()
            except JobsError as exc:  # the link dropped or Jobs did not answer: next wake
                logger.warning("%s: %s", self.name, exc)
            except Exception:  # the pool must never lose a store's checks silently
                logger.exception("%s: simulated update failed", self.name)
            with self._lock:
                if not self._again or self._closing:
                    self._busy = False
                    return
                self._again = False

    def _check(self) -> None:
        link, jobs = self._link, self._jobs
        if link is None or jobs is None:
            return
        if not link.connected.wait(CONNECT_TIMEOUT_S):
            raise JobsError("not connected")
        while (execution := jobs.start_next()) is not None:
            self._handle(jobs, execution)

    def _handle(self, jobs: JobsClient, execution: JobExecution) -> None:
        try:
            doc = JobDocument.from_dict(execution.document)
        except DocumentError as exc:
            self._report(jobs, execution, "REJECTED", StatusDetails("refused", "unknown",
                                                                    reason=str(exc)))
            return
        if self.behaviour.fail_reason:
            self._report(jobs, execution, "FAILED", StatusDetails(
                "refused", doc.version, reason=self.behaviour.fail_reason))
            return
        if self.bundles.get(doc.version) != doc.sha256:
            problem = self._download(doc)
            if problem:
                self._report(jobs, execution, "FAILED",
                             StatusDetails("refused", doc.version, reason=problem))
                return
        self.serving = doc.version
        b = self.behaviour
        if doc.operation == ROLLBACK:
            details = StatusDetails("serving", doc.version, reason="rolled back")
        else:
            details = StatusDetails("serving", doc.version, requests=b.requests,
                                    error_rate=b.error_rate, p99_ms=b.p99_ms,
                                    ctr_before=b.ctr_before, impressions_before=b.impressions,
                                    ctr_after=b.ctr_after, impressions_after=b.impressions)
        self._report(jobs, execution, "SUCCEEDED", details)

    def _download(self, doc: JobDocument) -> str | None:
        """None once the archive is here and is the job's; else why not."""
        digest, size = hashlib.sha256(), 0
        try:
            with urllib.request.urlopen(doc.url, timeout=DOWNLOAD_TIMEOUT_S) as response:
                while chunk := response.read(1 << 16):
                    size += len(chunk)
                    if size > doc.bytes:
                        return f"the archive is larger than the {doc.bytes} bytes named"
                    digest.update(chunk)
        except OSError as exc:  # URLError is an OSError
            return f"download failed: {getattr(exc, 'reason', exc)}"
        if size != doc.bytes or digest.hexdigest() != doc.sha256:
            return f"the archive ({size} bytes) is not the one the job names"
        self.bundles[doc.version] = doc.sha256
        return None

    def _report(self, jobs: JobsClient, execution: JobExecution, status: str,
                details: StatusDetails) -> None:
        jobs.update(execution.job_id, status, details.to_map())
        self.outcomes.append(Outcome(execution.job_id, status, details.version, time.time()))


@dataclass
class SimulatedFleet:
    """The simulated stores of one process, and the pool their work runs on."""

    stores: dict[str, SimulatedStore] = field(default_factory=dict)
    pool: ThreadPoolExecutor = field(default_factory=lambda: ThreadPoolExecutor(
        DEFAULT_WORKERS, thread_name_prefix="simulated-store"))

    @classmethod
    def provision(cls, cloud: LocalCloud, names: Iterable[str], directory: Path,
                  behaviours: dict[str, Behaviour] | None = None,
                  workers: int = DEFAULT_WORKERS) -> SimulatedFleet:
        """Register each store with the local cloud's IoT (fleet group included) and write
        its credentials under `directory`; nothing connects until `start()`."""
        names = list(names)
        iot = cloud.boto3_client("iot")
        issuer = OwnCACertificates(cloud.ca)

        def one(name: str) -> LinkCredentials:
            return provision_store(iot, name, directory, endpoint_host=cloud.broker.host,
                                   endpoint_port=cloud.broker.port, issuer=issuer)

        credentials = [one(names[0])] if names else []  # the CA, group and policy, once
        with ThreadPoolExecutor(PROVISION_WORKERS) as provisioning:
            credentials += provisioning.map(one, names[1:])
        fleet = cls(pool=ThreadPoolExecutor(workers, thread_name_prefix="simulated-store"))
        for creds in credentials:
            behaviour = (behaviours or {}).get(creds.thing_name)
            fleet.stores[creds.thing_name] = SimulatedStore(creds, fleet.pool, behaviour)
        return fleet

    def start(self, timeout_s: float = CONNECT_TIMEOUT_S) -> None:
        """Bring every store online but those whose behaviour says offline; return once all
        of them are connected."""
        starting = [s for s in self.stores.values() if not s.behaviour.offline]
        for store in starting:
            store.go_online()
        deadline = time.monotonic() + timeout_s
        for store in starting:
            assert store._link is not None
            if not store._link.connected.wait(max(0.0, deadline - time.monotonic())):
                raise JobsError(f"{store.name} did not connect within {timeout_s}s")

    def serving(self, version: str) -> list[str]:
        return sorted(name for name, s in self.stores.items() if s.serving == version)

    def wait_serving(self, version: str, timeout_s: float,
                     names: Iterable[str] | None = None) -> bool:
        wanted = set(names) if names is not None else set(self.stores)
        deadline = time.monotonic() + timeout_s
        while not wanted <= set(self.serving(version)):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True

    def __iter__(self) -> Iterator[SimulatedStore]:
        return iter(self.stores.values())

    def __getitem__(self, name: str) -> SimulatedStore:
        return self.stores[name]

    def close(self) -> None:
        # No new checks, the running ones finish while their links still answer, then the
        # links go: a request on a stopped link would only time out.
        for store in self.stores.values():
            with store._lock:
                store._closing = True
        self.pool.shutdown(wait=True, cancel_futures=True)
        for store in self.stores.values():
            store.go_offline()

    def __enter__(self) -> SimulatedFleet:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
