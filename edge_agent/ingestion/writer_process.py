"""The SQLite writer runs in its own process.

Why a process: validating and committing costs about as much CPU per event as paho's
network loop does; in one process they share the GIL and their costs add up, in two they
run in parallel (and HTTP requests in the agent's process don't wait behind ingestion).

Protocol over two one-way pipes: the agent sends `(seq, [(topic, payload), ...])` batches,
the writer answers `(seq, BatchResult)` in the same order once the batch is committed, and
`None` asks it to finish. The writer exits by itself when the agent's end of the pipe closes.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from multiprocessing.connection import Connection
from typing import Literal

from edge_agent.storage import open_database
from edge_agent.storage.event_writer import BatchResult, EventWriter, RawMessage

logger = logging.getLogger(__name__)

# A failing commit is retried with backoff; after this many tries the batch is written one
# message at a time, so a single message SQLite cannot store is dead-lettered, not retried.
COMMIT_RETRIES_BEFORE_ISOLATING = 3
COMMIT_RETRY_BACKOFF_S = (0.1, 0.5, 2.0, 5.0)

Batch = tuple[int, list[tuple[str, bytes]]]


@dataclass(frozen=True)
class WriterConfig:
    db_path: str
    synchronous: Literal["FULL", "NORMAL"]
    store_id: str
    max_payload_bytes: int
    dead_letter_max_raw_bytes: int


class WriterDied(RuntimeError):
    """The writer process ended unexpectedly; its unanswered batches must be sent again."""


class WriterProcess:
    """Handle on the child process, used from a single thread of the agent."""

    def __init__(self, config: WriterConfig) -> None:
        self._config = config
        self._process: subprocess.Popen[bytes] | None = None
        self._to_writer: Connection | None = None
        self._from_writer: Connection | None = None

    def start(self) -> None:
        # A plain `python -m` child rather than multiprocessing's spawn, which would re-run
        # the embedding program's main script; fork is no option with paho's thread running.
        batches_read, batches_write = os.pipe()
        results_read, results_write = os.pipe()
        self._process = subprocess.Popen(
            [sys.executable, "-m", __name__, str(batches_read), str(results_write),
             json.dumps(asdict(self._config))],
            pass_fds=(batches_read, results_write), close_fds=True)
        # Close our copies of the child's ends, so each side sees EOF when the other dies.
        os.close(batches_read)
        os.close(results_write)
        self._to_writer = Connection(batches_write, readable=False)
        self._from_writer = Connection(results_read, writable=False)

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def send(self, batch: Batch) -> None:
        assert self._to_writer is not None
        try:
            self._to_writer.send(batch)
        except (BrokenPipeError, ConnectionResetError, EOFError, OSError) as exc:
            raise WriterDied(str(exc)) from exc

    def receive(self, timeout: float) -> tuple[int, BatchResult] | None:
        """The next answer, or None if none came within `timeout` seconds."""
        assert self._from_writer is not None
        try:
            if not self._from_writer.poll(timeout):
                if self._process is not None and self._process.poll() is not None:
                    raise WriterDied(f"exit code {self._process.returncode}")
                return None
            return self._from_writer.recv()
        except (EOFError, ConnectionResetError, OSError) as exc:
            raise WriterDied(str(exc)) from exc

    def stop(self, timeout: float) -> None:
        if self._process is None:
            return
        try:
            if self._to_writer is not None:
                self._to_writer.send(None)
        except OSError:
            pass
        try:
            self._process.wait(timeout)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(timeout)
        for conn in (self._to_writer, self._from_writer):
            if conn is not None:
                conn.close()
        self._process = self._to_writer = self._from_writer = None

    def restart(self) -> None:
        self.stop(timeout=1.0)
        self.start()


def _writer_main(config: WriterConfig, batches: Connection, results: Connection) -> None:
    # Ctrl-C reaches the whole process group; the agent decides when the writer stops (it
    # sends None after the last batch), so an interrupt must not cut a commit short.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(processName)s %(name)s: %(message)s")
    db = open_database(config.db_path, synchronous=config.synchronous)
    writer = EventWriter(db, store_id=config.store_id,
                         max_payload_bytes=config.max_payload_bytes,
                         dead_letter_max_raw_bytes=config.dead_letter_max_raw_bytes)
    try:
        while True:
            try:
                batch: Batch | None = batches.recv()
            except EOFError:
                return  # the agent is gone; whatever it sent is committed or unacked
            if batch is None:
                return
            seq, items = batch
            result = _write_until_stored(writer, [RawMessage(t, p) for t, p in items])
            try:
                results.send((seq, result))
            except OSError:
                return
    finally:
        db.close()


def _write_until_stored(writer: EventWriter, messages: list[RawMessage]) -> BatchResult:
    """Retry a failing commit with backoff, then message by message; while the database
    itself keeps failing, keep trying: nothing is acked meanwhile, so the broker holds the
    rest back (Receive Maximum) and nothing is lost."""
    attempt = 0
    started = time.perf_counter()
    while True:
        try:
            if attempt < COMMIT_RETRIES_BEFORE_ISOLATING:
                result = writer.write_batch(messages)
            else:
                result = writer.write_one_by_one(messages)
            result.storage_errors = attempt
            result.seconds = time.perf_counter() - started
            return result
        except Exception:
            logger.exception("commit of %d messages failed (attempt %d)", len(messages),
                             attempt + 1)
        time.sleep(COMMIT_RETRY_BACKOFF_S[min(attempt, len(COMMIT_RETRY_BACKOFF_S) - 1)])
        attempt += 1


if __name__ == "__main__":
    _batches_fd, _results_fd, _config_json = sys.argv[1:4]
    _writer_main(WriterConfig(**json.loads(_config_json)),
                 Connection(int(_batches_fd), writable=False),
                 Connection(int(_results_fd), readable=False))
