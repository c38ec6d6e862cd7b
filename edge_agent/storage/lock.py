"""One agent per database: an exclusive lock beside the database file.

Two agents on one database would knock each other off the broker (they share the MQTT client
id) and race on every projection. The lock is an `flock` on `<db>.lock`, released by the
kernel when the process dies however it dies, so a kill -9 never leaves a stale lock.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path


class DatabaseInUse(RuntimeError):
    """Another agent holds the database."""


class DatabaseLock:
    def __init__(self, db_path: Path | str) -> None:
        self._db_path = Path(db_path)
        self.path = self._db_path.with_name(self._db_path.name + ".lock")
        self._fd: int | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise DatabaseInUse(
                f"db: another edge agent (pid {holder}) is running on {self._db_path}; stop"
                " it first, or give this agent its own database (--db / EDGE_DB)") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor releases the flock
            self._fd = None
