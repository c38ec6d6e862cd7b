"""Model answers per shopper, reused until the shopper buys again, by every HTTP worker.

A shopper's ranking and purchase timing depend on their features, which change only when a
sale of theirs is applied, on the model version, and slowly on the clock ("7 days since"
becomes "8 days since" once a day). At a kiosk the same shopper asks for suggestions, their
list and the route for it within a minute, and the display near them asks too: computing the
model once for all of those is what keeps the edge's CPU for the shoppers not seen yet.
Everything that can change by the minute is applied after the memo, per request: stock,
diet and allergens, the store's rules, the reasons' wording.

The workers of `run --workers N` share one memo, a SQLite file in the run's private
directory: the kernel hands each new connection to any worker, so with a memo per worker a
shopper's first request missed once in every worker (ranking hits were 39-43 % under
`benchmarks/serving.py` with two workers). Reads never wait (WAL); a write that would wait
for another worker's is skipped, so the memo can cost an answer but never a request's time.
The file is a cache of this run only: nothing is synced to disk, and it starts empty.

Answers are kept pickled: as objects, thousands of shoppers' answers are hundreds of
thousands of small objects that every full garbage collection walks (40 ms pauses of the
event loop under load); as bytes they are invisible to it, and unpickling costs ~0.05 ms.
"""

from __future__ import annotations

import json
import logging
import pickle
import sqlite3
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

from prometheus_client import CollectorRegistry, Counter

from edge_agent.shoppers.profile import Profile

logger = logging.getLogger(__name__)

T = TypeVar("T")
# Bounded: the shoppers in the store in the last minutes, not the whole loyalty base. An
# answer is 1-4 KB, so at most ~80 MB of file whatever the traffic.
MAX_ENTRIES = 20_000
# Counting the entries costs a scan of the table, so the cap is enforced every so many writes
# (it may be exceeded by that many in between); expired answers leave on every write.
TRIM_EVERY_WRITES = 500
# Only while a worker opens the file at startup.
SETUP_TIMEOUT_S = 10.0
_MISSING = object()


class ShopperMemo:
    """`path`: the file shared by the workers of one run; None keeps the memo in this
    process's memory (one process serves everything)."""

    def __init__(self, ttl_s: float, registry: CollectorRegistry,
                 path: Path | None = None) -> None:
        self._ttl_s = ttl_s
        self._lookups = Counter("edge_shopper_memo_lookups", "Shopper memo lookups by result",
                                ["kind", "result"], registry=registry)
        self._skipped = Counter("edge_shopper_memo_skipped_writes",
                                "Answers not kept because another worker was writing",
                                registry=registry)
        self._lock = threading.Lock()
        self._writes = 0
        self._conn = _open_shared(path)

    async def get_or_run(self, kind: str, profile: Profile, model_version: str,
                         compute: Callable[[], Awaitable[T]]) -> T:
        """`compute()`'s answer for this shopper's current features and model version. A
        hit costs no model thread, so remembered answers come back even while every model
        thread is busy."""
        key = self._key(kind, profile, model_version)
        found = self._lookup(kind, key)
        if found is not _MISSING:
            return found  # type: ignore[return-value]
        return self._keep(key, await compute())

    def _key(self, kind: str, profile: Profile, model_version: str) -> str | None:
        if self._ttl_s <= 0 or profile.features_stamp is None:
            return None
        # JSON: unambiguous whatever the parts hold.
        return json.dumps((kind, profile.customer_id, profile.features_stamp, model_version))

    def _lookup(self, kind: str, key: str | None) -> object:
        if key is None:
            return _MISSING
        try:
            with self._lock:
                row = self._conn.execute("SELECT value FROM answers WHERE key = ? AND expires > ?",
                                         (key, time.time())).fetchone()
        except sqlite3.Error as exc:  # a miss: the answer is computed, as without a memo
            logger.debug("shopper memo read failed: %s", exc)
            row = None
        self._lookups.labels(kind, "miss" if row is None else "hit").inc()
        # Written by this run's workers only, in the run's private directory.
        return _MISSING if row is None else pickle.loads(row[0])

    def _keep(self, key: str | None, value: T) -> T:
        if key is None:
            return value
        kept = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        now = time.time()
        try:
            with self._lock:
                # IMMEDIATE: fails at once, not at the first write, if another worker writes.
                self._conn.execute("BEGIN IMMEDIATE")
                try:
                    self._conn.execute("INSERT OR REPLACE INTO answers (key, expires, value)"
                                       " VALUES (?, ?, ?)", (key, now + self._ttl_s, kept))
                    # A busy morning's answers must not stay all afternoon.
                    self._conn.execute("DELETE FROM answers WHERE expires <= ?", (now,))
                    self._writes += 1
                    if self._writes % TRIM_EVERY_WRITES == 0:
                        self._trim()
                    self._conn.execute("COMMIT")
                except BaseException:
                    if self._conn.in_transaction:
                        self._conn.execute("ROLLBACK")
                    raise
        except sqlite3.OperationalError as exc:  # busy: another worker is writing
            self._skipped.inc()
            logger.debug("shopper memo write skipped: %s", exc)
        return value

    def _trim(self) -> None:
        """Drop the answers soonest to expire (the oldest) beyond :data:`MAX_ENTRIES`."""
        (count,) = self._conn.execute("SELECT count(*) FROM answers").fetchone()
        if count > MAX_ENTRIES:
            self._conn.execute("DELETE FROM answers WHERE rowid IN (SELECT rowid FROM answers"
                               " ORDER BY expires LIMIT ?)", (count - MAX_ENTRIES,))

    def __len__(self) -> int:
        """Answers kept and not expired (by every worker sharing the memo)."""
        with self._lock:
            (count,) = self._conn.execute("SELECT count(*) FROM answers WHERE expires > ?",
                                          (time.time(),)).fetchone()
        return int(count)

    def close(self) -> None:
        with self._lock:
            self._conn.close()


def create_memo_file(path: Path) -> None:
    """Create the shared memo, in WAL mode, before any worker opens it. Turning a new file to
    WAL takes an exclusive lock that SQLite does not wait for when two connections race for
    it ("database is locked" at once, whatever the timeout): with two workers starting
    together, one died so in about one start in 25."""
    _open(path).close()


def _open_shared(path: Path | None) -> sqlite3.Connection:
    """The shared memo, or one in this process's memory if the file cannot be opened: it
    is a cache, and a worker serving without sharing it beats a worker that cannot start."""
    if path is None:
        return _open(None)
    try:
        return _open(path)
    except sqlite3.Error as exc:
        logger.warning("shopper memo %s cannot be opened (%s); this worker keeps its own",
                       path, exc)
        return _open(None)


def _open(path: Path | None) -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:" if path is None else str(path), check_same_thread=False,
                           isolation_level=None, timeout=SETUP_TIMEOUT_S)
    conn.execute("PRAGMA journal_mode = WAL")
    # A cache of this run: a crash may lose it whole, and it is never synced to disk.
    conn.execute("PRAGMA synchronous = OFF")
    conn.execute("PRAGMA journal_size_limit = 8388608")
    conn.execute("CREATE TABLE IF NOT EXISTS answers (key TEXT NOT NULL UNIQUE,"
                 " expires REAL NOT NULL, value BLOB NOT NULL)")
    conn.execute("CREATE INDEX IF NOT EXISTS answers_by_expiry ON answers (expires)")
    # From now on, never wait for the other workers: a busy write is skipped, not queued.
    conn.execute("PRAGMA busy_timeout = 0")
    return conn
