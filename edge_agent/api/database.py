"""Read connections for request handlers: one per worker thread, opened on first use.

Ingestion writes through its own process; WAL lets these readers run beside it.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from edge_agent.storage.database import BUSY_TIMEOUT_MS


class ReadConnections:
    def __init__(self, path: Path) -> None:
        self._path = path
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()

    def get(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            # Read-only: a bug in a handler can never write to the store's history.
            conn = sqlite3.connect(f"file:{self._path}?mode=ro", uri=True,
                                   check_same_thread=False)
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            conn.row_factory = sqlite3.Row
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn

    def close(self) -> None:
        with self._lock:
            for conn in self._all:
                conn.close()
            self._all.clear()
