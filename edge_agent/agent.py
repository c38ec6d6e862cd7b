"""One store's agent: the database and MQTT ingestion (the HTTP service joins in serving)."""

from __future__ import annotations

import logging

from edge_agent.features.store import ensure_features_current
from edge_agent.ingestion.service import IngestionService, IngestStats
from edge_agent.metrics import AgentMetrics
from edge_agent.settings import Settings
from edge_agent.storage import open_database

logger = logging.getLogger(__name__)


class Agent:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.metrics = AgentMetrics()
        self._ingestion: IngestionService | None = None

    def start(self) -> None:
        # Migrate once up front, so a broken database fails start-up rather than a thread;
        # bring shopper features to this code's schema before any sale is applied to them.
        db = open_database(self.settings.db, synchronous=self.settings.sqlite_synchronous)
        try:
            ensure_features_current(db.conn)
        finally:
            db.close()
        self._ingestion = IngestionService(self.settings, self.metrics)
        self._ingestion.start()
        logger.info("agent for store %s: broker %s, database %s", self.settings.store_id,
                    self.settings.broker_address, self.settings.db)

    def stop(self) -> None:
        if self._ingestion is not None:
            self._ingestion.stop()
            self._ingestion = None

    @property
    def ingestion(self) -> IngestionService:
        if self._ingestion is None:
            raise RuntimeError("agent not started")
        return self._ingestion

    def stats(self) -> IngestStats:
        return self.ingestion.stats()

    def __enter__(self) -> Agent:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()
