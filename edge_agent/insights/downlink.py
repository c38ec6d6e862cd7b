"""Insights arriving over the cloud link on `cmd/instore/{store}/insights`.

The master-data downlink's machinery serves as is — a thread of its own, a message
acknowledged only once stored or dead-lettered, a database that cannot be written tried again
(the message waits in the persistent session meanwhile), each outcome reported to the cloud —
so this subclass only says how one message is applied (`edge_agent/insights/apply.py`).
"""

from __future__ import annotations

import logging
import sqlite3
from typing import Any

from cloud_sync.analysis.downlink import INSIGHTS_COMMAND
from cloud_sync.topics import command_topic
from edge_agent.insights.apply import apply_insights
from edge_agent.masterdata.downlink import Acknowledge, MasterDataDownlink, Report
from edge_agent.settings import Settings

logger = logging.getLogger(__name__)


class InsightsDownlink(MasterDataDownlink):
    def __init__(self, settings: Settings, pseudonym_key: bytes, *, acknowledge: Acknowledge,
                 report: Report) -> None:
        super().__init__(settings, acknowledge=acknowledge, report=report)
        self._thread.name = "insights-downlink"
        self._pseudonym_key = pseudonym_key
        self._topic = command_topic(settings.store_id, INSIGHTS_COMMAND)

    def _apply(self, conn: sqlite3.Connection, payload: bytes) -> dict[str, Any]:
        try:
            outcome = apply_insights(conn, payload, topic=self._topic,
                                     pseudonym_key=self._pseudonym_key,
                                     max_raw_bytes=self._settings.dead_letter_max_raw_bytes)
        except sqlite3.Error:
            raise  # the store's storage, not the message: the caller tries again
        except Exception as exc:  # a bug must not stop the thread, nor the next message
            logger.exception("an insights message could not be applied")
            self.refused += 1
            return {"batch_id": None, "status": "refused", "reason": f"not applied: {exc!r}"}
        if outcome.status == "refused":
            self.refused += 1
            logger.warning("dead-lettered an insights message: %s", outcome.reason)
        else:
            self.applied += 1
            logger.info("insights %s: %d stored, %d already, %d skipped, %d dead-lettered",
                        outcome.batch_id, outcome.stored, outcome.already, outcome.skipped,
                        outcome.dead_lettered)
        return {"kind": "insights", **outcome.to_dict()}
