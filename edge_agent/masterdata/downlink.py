"""The chain's master data arriving over the cloud link, applied through the same path as the
operator's `edge-agent import` (`apply_records`: validated, versioned, idempotent, one
transaction per message).

A message is acknowledged only once applied (or refused for good), so one that arrives while
the database cannot be written waits in the store's persistent session and comes again. The
outcome of every message — applied, stale, already applied, or the rows and fields refused —
goes back to the cloud on `dt/instore/{store}/masterdata-results`.
"""

from __future__ import annotations

import logging
import queue
import sqlite3
import threading
from collections.abc import Callable
from typing import Any

import orjson
from awscrt import mqtt5

from cloud_sync.link.masterdata import MasterDataMessageError, decode_message
from edge_agent.masterdata.apply import apply_records
from edge_agent.settings import Settings
from edge_agent.storage import open_database
from models.masterdata.records import KINDS, MasterDataError

logger = logging.getLogger(__name__)

# A database that refuses the write (disk full, locked) is tried again after this.
RETRY_S = 5.0
# Refused rows reported back per message: enough to fix a file, bounded in size.
MAX_REPORTED_ERRORS = 50

Acknowledge = Callable[[Any], None]
Report = Callable[[bytes], None]


class MasterDataDownlink:
    def __init__(self, settings: Settings, *, acknowledge: Acknowledge, report: Report) -> None:
        self._settings = settings
        self._acknowledge = acknowledge
        self._report = report
        self._inbox: queue.Queue[tuple[bytes, Any] | None] = queue.Queue()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="masterdata-downlink",
                                        daemon=True)
        self.applied = 0  # messages applied (or found already applied)
        self.refused = 0  # messages refused for good

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._inbox.put(None)
        self._thread.join(10)

    def on_message(self, data: mqtt5.PublishReceivedData) -> None:
        """The link's thread: take the acknowledgement, hand the message over. Never raises."""
        try:
            control = data.acquire_publish_acknowledgement_control
            handle = control() if control is not None else None
            self._inbox.put((bytes(data.publish_packet.payload or b""), handle))
        except Exception:
            logger.exception("a master-data message could not be taken")

    def _run(self) -> None:
        conn = open_database(self._settings.db, synchronous=self._settings.sqlite_synchronous,
                             check_same_thread=False).conn
        try:
            while (item := self._inbox.get()) is not None:
                payload, handle = item
                if not self._handle(conn, payload):
                    return  # stopping: unacknowledged, it comes again
                if handle is not None:
                    self._acknowledge(handle)
        finally:
            conn.close()

    def _handle(self, conn: sqlite3.Connection, payload: bytes) -> bool:
        """Apply or refuse the message; False only when stopping before it could be."""
        while not self._stop.is_set():
            try:
                outcome = self._apply(conn, payload)
            except sqlite3.Error as exc:  # the store's storage, not the message: try again
                logger.error("master data not applied (%s); retrying in %.0f s", exc, RETRY_S)
                self._stop.wait(RETRY_S)
                continue
            self._send(outcome)
            return True
        return False

    def _apply(self, conn: sqlite3.Connection, payload: bytes) -> dict[str, Any]:
        try:
            message = decode_message(payload)
        except MasterDataMessageError as exc:
            self.refused += 1
            logger.warning("refused a master-data message: %s", exc)
            return {"batch_id": None, "status": "refused", "reason": str(exc)}
        base = {"batch_id": message.batch_id, "kind": message.kind, "version": message.version}
        if message.kind not in KINDS:
            self.refused += 1
            return {**base, "status": "refused", "reason": f"unknown kind {message.kind!r}"}
        try:
            result = apply_records(conn, message.kind, message.rows, version=message.version,
                                   batch_id=message.batch_id)
        except MasterDataError as exc:
            self.refused += 1
            logger.warning("refused master-data batch %s: %s", message.batch_id, exc)
            return {**base, "status": "refused", "errors": [
                {"row": e.row, "field": e.field, "message": e.message}
                for e in exc.errors[:MAX_REPORTED_ERRORS]], "error_count": len(exc.errors)}
        self.applied += 1
        status = "already_applied" if result.already_applied else "applied"
        logger.info("master data %s %s: %d applied, %d stale", message.batch_id, status,
                    result.applied, result.stale)
        return {**base, "status": status, "applied": result.applied, "stale": result.stale}

    def _send(self, outcome: dict[str, Any]) -> None:
        try:
            self._report(orjson.dumps({"store_id": self._settings.store_id, **outcome}))
        except Exception:  # the result is a courtesy; the data is applied either way
            logger.exception("could not report a master-data result")
