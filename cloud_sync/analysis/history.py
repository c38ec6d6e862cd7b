"""Every analysis of every shopper, in SQLite: the history a store can be sent, and what
decides whether a shopper needs analysing again (its summary's digest changed)."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from cloud_sync.analysis.schema import AnalysisResult


class AnalysisHistory:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.execute("CREATE TABLE IF NOT EXISTS analyses (id INTEGER PRIMARY KEY, "
                       "shopper_id TEXT NOT NULL, digest TEXT NOT NULL, producer TEXT NOT NULL, "
                       "created_at TEXT NOT NULL, result TEXT NOT NULL)")
            db.execute("CREATE INDEX IF NOT EXISTS by_shopper ON analyses (shopper_id, id)")

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=10.0)

    def save(self, result: AnalysisResult) -> None:
        with self._lock, self._connect() as db:
            db.execute("INSERT INTO analyses (shopper_id, digest, producer, created_at, result)"
                       " VALUES (?, ?, ?, ?, ?)",
                       (result.shopper_id, result.summary_digest, result.producer,
                        result.created_at.isoformat(), result.model_dump_json()))

    def latest(self, shopper_id: str, *, producer: str | None = None) -> AnalysisResult | None:
        query = "SELECT result FROM analyses WHERE shopper_id = ?"
        args: tuple[str, ...] = (shopper_id,)
        if producer is not None:
            query += " AND producer = ?"
            args += (producer,)
        with self._connect() as db:
            row = db.execute(query + " ORDER BY id DESC LIMIT 1", args).fetchone()
        return AnalysisResult.model_validate_json(row[0]) if row else None

    def all_of(self, shopper_id: str) -> list[AnalysisResult]:
        with self._connect() as db:
            rows = db.execute("SELECT result FROM analyses WHERE shopper_id = ? ORDER BY id",
                              (shopper_id,)).fetchall()
        return [AnalysisResult.model_validate_json(r[0]) for r in rows]
