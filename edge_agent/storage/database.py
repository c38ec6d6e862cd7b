"""Opening the store database: WAL mode, pragmas, and migrations to the latest schema."""

from __future__ import annotations

import logging
import shutil
import sqlite3
from pathlib import Path
from typing import Literal

import sqlite_utils

from edge_agent.storage.migrations import migrate

logger = logging.getLogger(__name__)

# Readers (HTTP workers) and the ingestion writer share the file; a writer holding the lock
# for a batch commit should make a reader wait, not fail.
BUSY_TIMEOUT_MS = 5000
# 16 MiB of page cache per connection (negative = KiB). Pages beyond it are read back from
# the kernel's page cache, which a store box can reclaim under memory pressure, where
# SQLite's own cache is the process's for good: at 64 MiB the writer held 157 MB resident,
# at 16 MiB 102 MB, for the same CPU per event at 1,000 events/s into a store of 2 million
# line items (benchmarks/README.md, Serving, session 8).
CACHE_SIZE_KIB = 16 * 1024
# Checkpoint the WAL into the database every 10,000 pages (~40 MB) instead of SQLite's 1,000.
# A checkpoint copies each page once however many commits rewrote it, and at 1,000 events/s
# the hot pages (index right edges, today's product totals, shelf state) are rewritten by
# most commits: this cuts the writer's disk writes and CPU by about a fifth, for a WAL file
# that stays ~40 MB.
WAL_AUTOCHECKPOINT_PAGES = 10_000
# On a small or nearly full disk the WAL must stay a small share of the free space: a
# checkpoint needs room for the WAL and for the pages it copies into the database.
WAL_SHARE_OF_FREE_SPACE = 20
MIN_WAL_AUTOCHECKPOINT_PAGES = 100


def open_database(
    path: Path | str,
    *,
    synchronous: Literal["FULL", "NORMAL"] = "FULL",
    check_same_thread: bool = True,
) -> sqlite_utils.Database:
    """Open (creating if needed) the store database at `path`, migrated to the latest schema."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # isolation_level=None: we issue BEGIN/COMMIT ourselves, one transaction per batch.
    conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=check_same_thread)
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    db = sqlite_utils.Database(conn)
    db.enable_wal()
    conn.execute(f"PRAGMA synchronous = {synchronous}")
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute(f"PRAGMA cache_size = -{CACHE_SIZE_KIB}")
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    wal_pages = _wal_pages(path, page_size)
    conn.execute(f"PRAGMA wal_autocheckpoint = {wal_pages}")
    # After a checkpoint the WAL file is cut back to this size, not left at its largest.
    conn.execute(f"PRAGMA journal_size_limit = {wal_pages * page_size}")
    applied = migrate(db)
    if applied:
        logger.info("database %s migrated: %s", path, ", ".join(applied))
    return db


def _wal_pages(path: Path, page_size: int) -> int:
    """The WAL's checkpoint threshold in pages: WAL_AUTOCHECKPOINT_PAGES, or less on a disk
    where that would be more than a small share of the free space."""
    try:
        free = shutil.disk_usage(path.parent).free
    except OSError:
        return WAL_AUTOCHECKPOINT_PAGES
    fitting = free // WAL_SHARE_OF_FREE_SPACE // page_size
    return max(MIN_WAL_AUTOCHECKPOINT_PAGES, min(WAL_AUTOCHECKPOINT_PAGES, fitting))
