"""What an HTTP worker of `edge-agent run --workers N` uses in place of the agent that runs
beside it: the broker status and a way to store feedback (`WorkerIngest`). (Which bundle
every worker serves is the bundle folder's record: `ModelRegistry.follow`.)"""

from __future__ import annotations

import logging
import threading

from edge_agent.agent_health import AgentHealth
from edge_agent.api.shared import SharedRuntime
from edge_agent.ingestion.writer_process import write_until_stored
from edge_agent.settings import Settings
from edge_agent.storage import open_database
from edge_agent.storage.event_writer import EventWriter, RawMessage

logger = logging.getLogger(__name__)


class WorkerIngest:
    """What a worker's handlers ask of the agent: its health (broker, commits, storage),
    and store this event now (returns once committed)."""

    def __init__(self, settings: Settings, shared: SharedRuntime) -> None:
        self._settings = settings
        self._shared = shared
        self._lock = threading.Lock()  # one writer connection, used from the thread pool
        self._writer: EventWriter | None = None

    @property
    def connected(self) -> bool:
        return self.health().broker

    def health(self) -> AgentHealth:
        report = self._shared.agent_health()
        if report is None:
            return AgentHealth.gone("the agent process has not reported for a while")
        return AgentHealth.from_dict(report)

    def submit(self, topic: str, payload: bytes, timeout: float) -> bool:
        with self._lock:
            if self._writer is None:
                db = open_database(self._settings.db, synchronous=self._settings.sqlite_synchronous,
                                   check_same_thread=False)
                self._writer = EventWriter.from_settings(db, self._settings)
            try:
                result = write_until_stored(self._writer, [RawMessage(topic, payload)],
                                            deadline_s=timeout)
            except TimeoutError:
                return False
        return not result.rejected_positions
