"""One store's agent process: every service it runs, owned in one place.

`Agent.start()` takes the database (one agent per database), brings it and the shopper
features up to date, then starts ingestion (MQTT and its writer process), the model registry
and its bundle watcher, retention, the storage watch and the supervisor; `stop()` ends them
in reverse. The one-worker app (its lifespan) and `edge-agent run --workers N` (the agent
process) call only these two. With `cloud_credentials` set, the uplink runs here too (its
own thread and database connection); the model updater will join it.

The supervisor restarts ingestion whose pump stopped unexpectedly (a new MQTT connection, so
the broker redelivers whatever was not acknowledged); past a restart budget it declares the
agent failed and calls `on_fatal`, which the command line turns into a non-zero exit, so
systemd restarts the whole process rather than keep one that ingests nothing.
"""

from __future__ import annotations

import logging
import shutil
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

from edge_agent.agent_health import AgentHealth
from edge_agent.features.store import ensure_features_current
from edge_agent.ingestion.service import IngestionService, IngestStats
from edge_agent.metrics import AgentMetrics
from edge_agent.modeling.registry import SwapListener
from edge_agent.modeling.watcher import BundleWatcher, make_registry, start_models
from edge_agent.periodic import PeriodicTask
from edge_agent.settings import Settings
from edge_agent.storage import open_database
from edge_agent.storage.lock import DatabaseLock
from edge_agent.storage.retention import UNSENT_EVENTS, purge_once
from edge_agent.updates.health import MetricSource
from models.events import utc_now

if TYPE_CHECKING:
    # The cloud link's libraries (awscrt) load only in a store that has a link.
    from edge_agent.updates.updater import ModelUpdater
    from edge_agent.uplink.service import LinkStatus, UplinkService

logger = logging.getLogger(__name__)

SUPERVISE_INTERVAL_S = 1.0
STORAGE_CHECK_INTERVAL_S = 10.0
# Messages that waited this long for a commit mean ingestion is not keeping up or not
# committing at all: the agent is then not ready. A healthy commit takes milliseconds.
COMMIT_STALL_S = 30.0
# Ingestion may be restarted this many times within the window; one more failure is a
# crash loop that a process restart (systemd) handles better.
RESTARTS_ALLOWED = 5
RESTART_WINDOW_S = 600.0
# A purge backlog (a first start on an old database, retention shortened) is worked off in
# calls of half a second each, with the writer's commits in between.
PURGE_CALLS_PER_TICK = 10
PURGE_BACKLOG_PAUSE_S = 0.5
# The uplink's backlog, age and alarm are read this often (a cheap indexed query).
UPLINK_CHECK_INTERVAL_S = 5.0


class Agent:
    def __init__(self, settings: Settings, *, metrics: AgentMetrics | None = None,
                 on_model_swap: SwapListener | None = None, load_models: bool = True,
                 on_fatal: Callable[[str], None] | None = None,
                 serving_metrics: MetricSource | None = None) -> None:
        self.settings = settings
        self.metrics = metrics or AgentMetrics()
        # Where the HTTP latency histogram is read for a release's probation: this process's
        # registry, or with HTTP workers, theirs (given by the caller).
        self._serving_metrics = serving_metrics or self.metrics.registry.collect
        self.models = make_registry(settings, on_swap=on_model_swap)
        # With HTTP workers, each worker loads and serves the models itself.
        self._load_models = load_models
        self._on_fatal = on_fatal
        self._lock = DatabaseLock(settings.db)
        self._ingestion: IngestionService | None = None
        self._ingestion_lock = threading.Lock()
        self._watcher: BundleWatcher | None = None
        self._tasks: list[PeriodicTask] = []
        self._restarts: deque[float] = deque()
        self._free_bytes: int | None = None
        self._purge_conn: sqlite3.Connection | None = None
        self._uplink: UplinkService | None = None
        self._updater: ModelUpdater | None = None
        self.failed: str | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        self._lock.acquire()
        try:
            # Migrate once up front, so a broken database fails start-up rather than a
            # thread; bring shopper features to this code's schema before any sale is
            # applied to them.
            db = open_database(self.settings.db, synchronous=self.settings.sqlite_synchronous)
            try:
                ensure_features_current(db.conn)
            finally:
                db.close()
            self._ingestion = IngestionService(self.settings, self.metrics)
            self._ingestion.start()
            if self._load_models:
                self._watcher = start_models(self.settings, self.models)
            if self.settings.cloud_credentials is not None:
                from edge_agent.updates.updater import ModelUpdater
                from edge_agent.uplink.service import UplinkService

                self._uplink = UplinkService(self.settings, self.metrics)
                self._uplink.start()
                if self.models.library is not None:
                    self._updater = ModelUpdater(self.models, self._uplink.link,
                                                 self._serving_metrics,
                                                 self.settings.model_update_poll_s,
                                                 interactions_db=self.settings.db)
                    self._updater.start()
            self._check_storage()
            self._tasks = [
                PeriodicTask("supervisor", self._supervise, SUPERVISE_INTERVAL_S),
                PeriodicTask("storage-watch", self._check_storage, STORAGE_CHECK_INTERVAL_S),
                PeriodicTask("retention", self._purge, self.settings.purge_interval_s),
            ]
            if self._uplink is not None:
                self._uplink.refresh()
                self._tasks.append(PeriodicTask("uplink-watch", self._uplink.refresh,
                                                UPLINK_CHECK_INTERVAL_S))
            for task in self._tasks:
                task.start()
        except BaseException:
            self.stop()
            raise
        logger.info("agent for store %s: broker %s, database %s", self.settings.store_id,
                    self.settings.broker_address, self.settings.db)

    def stop(self) -> None:
        for task in reversed(self._tasks):
            task.stop()
        self._tasks = []
        if self._updater is not None:
            self._updater.stop()
            self._updater = None
        if self._uplink is not None:
            self._uplink.stop()
            self._uplink = None
        if self._watcher is not None:
            self._watcher.stop()
            self._watcher = None
        with self._ingestion_lock:
            if self._ingestion is not None:
                self._ingestion.stop()
                self._ingestion = None
        if self._purge_conn is not None:
            self._purge_conn.close()
            self._purge_conn = None
        self._lock.release()

    def __enter__(self) -> Agent:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    # -- what handlers and probes ask --------------------------------------------------------

    @property
    def ingestion(self) -> IngestionService:
        ingestion = self._ingestion
        if ingestion is None:
            raise RuntimeError("agent not started")
        return ingestion

    @property
    def connected(self) -> bool:
        return self.ingestion.connected

    def submit(self, topic: str, payload: bytes, timeout: float) -> bool:
        return self.ingestion.submit(topic, payload, timeout)

    def stats(self) -> IngestStats:
        return self.ingestion.stats()

    @property
    def uplink(self) -> UplinkService | None:
        return self._uplink

    @property
    def updater(self) -> ModelUpdater | None:
        return self._updater

    def link_status(self) -> LinkStatus | None:
        return None if self._uplink is None else self._uplink.status()

    def health(self) -> AgentHealth:
        ingestion = self.ingestion
        stall = ingestion.stall_seconds()
        error = ingestion.storage_error
        free = self._free_bytes
        if error is not None:
            storage, detail = "failing", error
        elif free is not None and free < self.settings.storage_alarm_free_mb * 2**20:
            storage, detail = "low", f"{free // 2**20} MiB free"
        else:
            storage, detail = "ok", None
        return AgentHealth(broker=ingestion.connected, committing=stall < COMMIT_STALL_S,
                           stall_s=round(stall, 3), storage=storage, storage_detail=detail,
                           free_bytes=free, failed=self.failed,
                           broker_refusal=ingestion.refusal,
                           link=None if self._uplink is None else self._uplink.status().to_dict())

    # -- background jobs ---------------------------------------------------------------------

    def _supervise(self) -> None:
        with self._ingestion_lock:
            ingestion = self._ingestion
            if ingestion is None:
                return
            self.metrics.ingest_stall_seconds.set(ingestion.stall_seconds())
            if ingestion.failure is None or self.failed is not None:
                return
            now = time.monotonic()
            while self._restarts and now - self._restarts[0] > RESTART_WINDOW_S:
                self._restarts.popleft()
            if len(self._restarts) >= RESTARTS_ALLOWED:
                self.failed = (f"ingestion stopped {len(self._restarts) + 1} times in"
                               f" {RESTART_WINDOW_S:.0f} s: {ingestion.failure!r}")
                logger.critical("%s; the agent gives up", self.failed)
                if self._on_fatal is not None:
                    self._on_fatal(self.failed)
                return
            self._restarts.append(now)
            logger.error("ingestion stopped (%r); restarting it", ingestion.failure)
            ingestion.stop()
            self._ingestion = IngestionService(self.settings, self.metrics)
            self._ingestion.start()
            self.metrics.ingest_restarts.inc()

    def _check_storage(self) -> None:
        try:
            free = shutil.disk_usage(self.settings.db.parent.resolve()).free
        except OSError:
            logger.exception("cannot read the free space of %s", self.settings.db.parent)
            return
        low = free < self.settings.storage_alarm_free_mb * 2**20
        was_low = (self._free_bytes is not None
                   and self._free_bytes < self.settings.storage_alarm_free_mb * 2**20)
        if low and not was_low:
            logger.warning("storage low: %d MiB free for %s (alarm below %d MiB)",
                           free // 2**20, self.settings.db, self.settings.storage_alarm_free_mb)
        self._free_bytes = free
        if self._uplink is not None:
            self._uplink.set_storage_low(low)
        self.metrics.storage_free_bytes.set(free)
        self.metrics.storage_low.set(int(low))

    def _purge(self) -> None:
        if self._purge_conn is None:
            self._purge_conn = open_database(self.settings.db,
                                             synchronous=self.settings.sqlite_synchronous,
                                             check_same_thread=False).conn
        for _ in range(PURGE_CALLS_PER_TICK):
            result = purge_once(self._purge_conn, self.settings, utc_now())
            for table, rows in result.deleted.items():
                if rows:
                    self.metrics.purged_rows.labels(table).inc(rows)
            if result.deleted[UNSENT_EVENTS]:
                logger.warning("deleted %d events the cloud never got: older than"
                               " uplink_max_unsent_days (%g)", result.deleted[UNSENT_EVENTS],
                               self.settings.uplink_max_unsent_days)
            if not result.more:
                return
            time.sleep(PURGE_BACKLOG_PAUSE_S)
