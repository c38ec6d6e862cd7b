"""Every analysis of every shopper, in SQLite: the history a store can be sent, what decides
whether a shopper needs analysing again (its summary's digest changed), and what the
accuracy job scores (every stored prediction, with its producer and A/B arm)."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from cloud_sync.analysis.schema import AnalysisResult

# Columns added after the first release of the table: (name, SQL type), added when missing.
LATER_COLUMNS = (("arm", "TEXT"), ("model_id", "TEXT"))


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
            have = {row[1] for row in db.execute("PRAGMA table_info(analyses)")}
            for name, kind in LATER_COLUMNS:
                if name not in have:
                    db.execute(f"ALTER TABLE analyses ADD COLUMN {name} {kind}")

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=10.0)

    def save(self, result: AnalysisResult) -> None:
        with self._lock, self._connect() as db:
            db.execute("INSERT INTO analyses (shopper_id, digest, producer, created_at, result,"
                       " arm, model_id) VALUES (?, ?, ?, ?, ?, ?, ?)",
                       (result.shopper_id, result.summary_digest, result.producer,
                        result.created_at.isoformat(), result.model_dump_json(), result.arm,
                        result.model_id))

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

    def rows(self, *, since: str | None = None) -> list[tuple[int, AnalysisResult]]:
        """Every analysis with its row id (the key its prediction scores are stored by),
        optionally only those created at or after `since` (ISO time)."""
        query, args = "SELECT id, result FROM analyses", ()
        if since is not None:
            query, args = query + " WHERE created_at >= ?", (since,)
        with self._connect() as db:
            found = db.execute(query + " ORDER BY id", args).fetchall()
        return [(int(i), AnalysisResult.model_validate_json(r)) for i, r in found]
