"""The store's side of a model release: AWS IoT Jobs in, a verified model swapped in, the
store's own health watched on probation, the outcome reported.

One execution at a time, in one thread. For an install: download (bounded by the job's size
and digest), verify and smoke-test through the registry (which refuses a version not newer
than the served one), swap, then a probation window watching this store's error rate and
p99 latency; a breach rolls back locally at once and reports FAILED with the numbers, a
quiet window reports SUCCEEDED with them, and with the recommendations' click-through of
the new version and of the one before (`clickthrough.py`) for the controller to judge. Each
stage is reported in `statusDetails` as it is reached, so an agent killed mid-way finds, on
restart, the same IN_PROGRESS execution and where it was: what it serves then is whatever
the bundle folder's record says (always a verified bundle), and the execution is taken up
again from there.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime
from pathlib import Path

from cloud_sync.link.jobs import JobExecution, JobRejected, JobsClient, JobsError
from cloud_sync.link.mqtt import LinkClient
from cloud_sync.release.document import (
    ROLLBACK,
    DocumentError,
    JobDocument,
    StatusDetails,
)
from edge_agent.modeling.registry import BundleRefused, ModelRegistry
from edge_agent.updates.clickthrough import before_and_after
from edge_agent.updates.download import DownloadError, discard, download, sweep
from edge_agent.updates.health import HealthWindow, MetricSource, snapshot
from models.bundle import BundleError
from models.events import utc_now

logger = logging.getLogger(__name__)

DOWNLOADS_DIR = ".downloads"  # inside the bundle folder; a dot name, so never a "drop"
PROBATION_CHECK_S = 1.0
# How often a store on probation asks whether the cloud cancelled its job (besides when a
# notification says its pending jobs changed).
CANCEL_CHECK_S = 5.0
CANCELLED_PREFIX = "the job was"
UNKNOWN_VERSION = "unknown"


class ModelUpdater:
    def __init__(self, registry: ModelRegistry, link: LinkClient, serving_metrics: MetricSource,
                 poll_s: float, interactions_db: Path | None = None) -> None:
        if registry.library is None:
            raise ValueError("model updates need a fleet public key (model_public_key)")
        self._registry = registry
        self._library = registry.library
        self._link = link
        self._metrics = serving_metrics
        self._poll_s = poll_s
        self._interactions_db = interactions_db  # None: click-through is not reported
        self._jobs: JobsClient | None = None
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="model-updater", daemon=True)

    def start(self) -> None:
        swept = sweep(self._library.directory / DOWNLOADS_DIR)
        if swept:
            logger.info("model updates: removed %d download(s) left by an earlier run", swept)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=15)
        if self._jobs is not None:
            self._jobs.close()

    # -- the loop ---------------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                if self._jobs is None and self._link.connected.is_set():
                    self._subscribe()
                if self._jobs is not None:
                    while not self._stop.is_set() and self.check_once():
                        pass
            except JobsError as exc:  # the link dropped or IoT Jobs did not answer: later
                logger.warning("model updates: %s", exc)
            except Exception:  # never let the updater thread die
                logger.exception("model updates: unexpected failure")
            self._wake.wait(self._poll_s)
            self._wake.clear()

    def _subscribe(self) -> None:
        jobs = JobsClient(self._link)
        jobs.on_next_execution(lambda execution: self._wake.set())
        self._jobs = jobs
        logger.info("model updates: listening for release jobs")

    def check_once(self) -> bool:
        """Take up the next pending execution, if any; True if there was one."""
        assert self._jobs is not None
        execution = self._jobs.start_next()
        if execution is None:
            return False
        self._handle(execution)
        return True

    # -- one execution ----------------------------------------------------------------------
    def _handle(self, execution: JobExecution) -> None:
        try:
            doc = JobDocument.from_dict(execution.document)
        except DocumentError as exc:
            self._finish(execution, "REJECTED", StatusDetails("refused", UNKNOWN_VERSION,
                                                              reason=str(exc)))
            return
        # With HTTP workers this process serves nothing until it follows the record; the
        # version order must be judged against what the store really serves.
        self._registry.follow()
        if doc.operation == ROLLBACK:
            self._roll_back_to(execution, doc)
            return
        # Installed even when the version is the one served (a restart in probation): the
        # job's archive must be that very bundle, and only its signed manifest can say so.
        try:
            swapped = self._install(execution, doc)
        except (BundleRefused, DownloadError) as exc:
            reason = exc.reason if isinstance(exc, BundleRefused) else str(exc)
            self._finish(execution, "FAILED", StatusDetails("refused", doc.version,
                                                            reason=reason))
            return
        previous = self._previous_version()
        self._report(execution, StatusDetails("probation", doc.version))
        window, breach = self._probation(execution, doc)
        if window is None:
            return  # stopping: the execution stays IN_PROGRESS and is taken up on restart
        health: dict[str, float | int] = {
            "requests": window.requests, "error_rate": round(window.error_rate, 6),
            "p99_ms": min(window.p99_ms, 1e9)}
        if self._interactions_db is not None:
            health |= before_and_after(self._interactions_db, previous, doc.version, swapped,
                                       utc_now())
        if breach is None:
            self._finish(execution, "SUCCEEDED", StatusDetails("serving", doc.version, **health))
            return
        try:
            back = self._registry.rollback().version
        except (LookupError, BundleRefused) as exc:
            breach += f"; could not roll back: {exc}"
            back = doc.version
        logger.error("model %s rolled back to %s on probation: %s", doc.version, back, breach)
        if breach.startswith(CANCELLED_PREFIX):
            return  # the cloud ended the execution: nothing more to report on it
        self._finish(execution, "FAILED", StatusDetails("rolled-back", doc.version,
                                                        reason=breach, **health))

    def _previous_version(self) -> str | None:
        """The version served before the swap just made (after a restart in probation, the
        serving record's previous)."""
        if self._registry.previous is not None:
            return self._registry.previous.version
        record = self._library.serving()
        return record.previous if record is not None else None

    def _install(self, execution: JobExecution, doc: JobDocument) -> datetime:
        """Serve the job's version; returns a time just before the swap. HTTP workers serve
        it as soon as it is recorded, before this returns: a time taken after would miss
        the new version's first impressions (seen in a test under load)."""
        self._fetch(execution, doc, reuse_installed=False)
        self._report(execution, StatusDetails("verifying", doc.version))
        swapped = utc_now()
        self._registry.serve_version(doc.version)  # smoke test; refused unless newer
        return swapped

    def _fetch(self, execution: JobExecution, doc: JobDocument, reuse_installed: bool) -> None:
        """Make sure the job's bundle is installed (downloaded and verified) here. Another
        bundle signed with the same version is refused by the install."""
        if reuse_installed and doc.version in self._library.versions():
            return
        self._report(execution, StatusDetails("downloading", doc.version))
        archive = self._library.directory / DOWNLOADS_DIR / f"{execution.job_id}.tar.gz"
        try:
            download(doc.url, archive, doc.bytes, doc.sha256)
            self._report(execution, StatusDetails("verifying", doc.version))
            bundle = self._library.install(archive)
        except BundleError as exc:
            raise BundleRefused(doc.version, f"{type(exc).__name__}: {exc}") from exc
        finally:
            discard(archive)
        if bundle.version != doc.version:  # signed as another version than the job names
            raise BundleRefused(bundle.version, f"the bundle is version {bundle.version},"
                                f" the job names {doc.version}")

    def _probation(self, execution: JobExecution, doc: JobDocument
                   ) -> tuple[HealthWindow | None, str | None]:
        """Watch this store's serving health for the job's probation; the first breach ends
        it, and so does the cloud cancelling the job (an aborted release goes back at once,
        not when the probation would have ended). (None, None) when the agent stops."""
        start = snapshot(self._metrics)
        waited, asked = 0.0, 0.0
        while True:
            window = snapshot(self._metrics).since(start)
            breach = window.breach(doc.max_error_rate, doc.max_p99_ms)
            if breach is not None or waited >= doc.probation_s:
                return window, breach
            if self._wake.is_set() or waited - asked >= CANCEL_CHECK_S:
                self._wake.clear()
                asked = waited
                ended = self._ended_by_cloud(execution.job_id)
                if ended is not None:
                    return window, f"{CANCELLED_PREFIX} {ended} during probation"
            step = min(PROBATION_CHECK_S, doc.probation_s - waited)
            if self._stop.wait(step):
                return None, None
            waited += step

    def _ended_by_cloud(self, job_id: str) -> str | None:
        """The execution's status if the cloud ended it (cancelled, removed, timed out)."""
        assert self._jobs is not None
        try:
            found = self._jobs.describe(job_id, include_document=False)
        except JobRejected as exc:
            return exc.code if exc.code == "ResourceNotFound" else None
        except JobsError:
            return None  # no answer now: asked again at the next check
        if found is not None and found.status in ("CANCELED", "REMOVED", "TIMED_OUT"):
            return found.status
        return None

    def _roll_back_to(self, execution: JobExecution, doc: JobDocument) -> None:
        current = self._registry.current
        if current is None or current.version != doc.version:
            try:
                # A version this store already holds is the one to go back to.
                self._fetch(execution, doc, reuse_installed=True)
                self._registry.serve_version(doc.version, rollback=True)
            except (BundleRefused, DownloadError) as exc:
                reason = exc.reason if isinstance(exc, BundleRefused) else str(exc)
                self._finish(execution, "FAILED", StatusDetails("refused", doc.version,
                                                                reason=reason))
                return
        self._finish(execution, "SUCCEEDED", StatusDetails("serving", doc.version,
                                                           reason="rolled back"))

    # -- reporting --------------------------------------------------------------------------
    def _report(self, execution: JobExecution, details: StatusDetails) -> None:
        assert self._jobs is not None
        self._jobs.update(execution.job_id, "IN_PROGRESS", details.to_map())

    def _finish(self, execution: JobExecution, status: str, details: StatusDetails) -> None:
        assert self._jobs is not None
        self._jobs.update(execution.job_id, status, details.to_map())
        logger.info("model release job %s: %s (%s %s)", execution.job_id, status,
                    details.stage, details.version)

