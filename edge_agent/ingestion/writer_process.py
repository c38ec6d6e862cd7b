"""The SQLite writer runs in its own process.

Why a process: validating and committing costs about as much CPU per event as paho's
network loop does; in one process they share the GIL and their costs add up, in two they
run in parallel (and HTTP requests in the agent's process don't wait behind ingestion).

Protocol over two one-way pipes: the agent first sends its settings (JSON: they hold no
secret the writer may not see, and argv would show them to `ps`), then `(seq, [(topic,
payload), ...])` batches; the writer answers `(seq, BatchResult)` in the same order once the
batch is committed, and `None` asks it to finish. The writer exits by itself when the
agent's end of the pipe closes.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from multiprocessing.connection import Connection

from edge_agent.settings import Settings, settings_from_json, settings_to_json
from edge_agent.storage import open_database
from edge_agent.storage.event_writer import (
    BatchResult,
    EventWriter,
    RawMessage,
    is_storage_error,
)

logger = logging.getLogger(__name__)

# While the database refuses writes (a full disk, an I/O error, a lock) the batch is tried
# again with backoff, for as long as it takes: nothing is acknowledged meanwhile.
COMMIT_RETRY_BACKOFF_S = (0.1, 0.5, 2.0, 5.0)
# A storage outage can last hours: log its first failure, then every this many tries.
STORAGE_ERROR_LOG_EVERY = 60

Batch = tuple[int, list[tuple[str, bytes]]]
# The batch number of an interim answer: the database refuses writes (its error as text), so
# the agent can say so (/readyz, /metrics) while the batch waits.
STORAGE_ERROR_SEQ = -1


class WriterDied(RuntimeError):
    """The writer process ended unexpectedly; its unanswered batches must be sent again."""


class WriterProcess:
    """Handle on the child process, used from a single thread of the agent."""

    def __init__(self, settings: Settings) -> None:
        self._settings_json = settings_to_json(settings)
        self._process: subprocess.Popen[bytes] | None = None
        self._to_writer: Connection | None = None
        self._from_writer: Connection | None = None

    def start(self) -> None:
        # A plain `python -m` child rather than multiprocessing's spawn, which would re-run
        # the embedding program's main script; fork is no option with paho's thread running.
        batches_read, batches_write = os.pipe()
        results_read, results_write = os.pipe()
        self._process = subprocess.Popen(
            [sys.executable, "-m", __name__, str(batches_read), str(results_write)],
            pass_fds=(batches_read, results_write), close_fds=True)
        # Close our copies of the child's ends, so each side sees EOF when the other dies.
        os.close(batches_read)
        os.close(results_write)
        self._to_writer = Connection(batches_write, readable=False)
        self._from_writer = Connection(results_read, writable=False)
        self.send(self._settings_json)  # type: ignore[arg-type]

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def send(self, batch: Batch | str) -> None:
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


def _writer_main(batches: Connection, results: Connection) -> None:
    # Ctrl-C, systemd's stop and `timeout` signal the whole process group; the agent decides
    # when the writer stops (it sends None after the last batch), so neither may cut a commit
    # short or leave the agent restarting a writer on its way out. If the agent dies, the
    # pipe's EOF ends the writer.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        first = batches.recv()
    except EOFError:
        return
    if not isinstance(first, str):  # stopped before it was told anything
        return
    settings = settings_from_json(first)
    logging.basicConfig(level=settings.log_level,
                        format="%(asctime)s %(levelname)s writer-%(process)d %(name)s: "
                               "%(message)s")
    db = open_database(settings.db, synchronous=settings.sqlite_synchronous)
    writer = EventWriter.from_settings(db, settings)
    try:
        while True:
            try:
                batch: Batch | None = batches.recv()
            except EOFError:
                return  # the agent is gone; whatever it sent is committed or unacked
            if batch is None:
                return
            seq, items = batch
            try:
                result = write_until_stored(
                    writer, [RawMessage(t, p) for t, p in items],
                    on_storage_error=lambda text: results.send((STORAGE_ERROR_SEQ, text)))
                results.send((seq, result))
            except OSError:
                return
    finally:
        db.close()


def write_until_stored(writer: EventWriter, messages: list[RawMessage], *,
                       deadline_s: float | None = None,
                       on_storage_error: Callable[[str], None] | None = None,
                       sleep: Callable[[float], None] = time.sleep) -> BatchResult:
    """Store `messages`, however long the database takes to accept writes again.

    A message the projections cannot take makes the batch fail: it is then written one
    message at a time, and that message is dead-lettered. A storage error is never a
    message's fault: the batch is retried with backoff until it commits, and nothing is
    acknowledged meanwhile, so the broker holds the rest back (Receive Maximum). With
    `deadline_s` (a request waiting), TimeoutError once that many seconds have passed."""
    attempt = 0
    one_by_one = False
    started = time.perf_counter()
    while True:
        try:
            result = (writer.write_one_by_one(messages) if one_by_one
                      else writer.write_batch(messages))
            result.storage_errors = attempt
            result.seconds = time.perf_counter() - started
            return result
        except Exception as exc:
            if not is_storage_error(exc) and not one_by_one:
                one_by_one = True
                continue
            if attempt == 0 or attempt % STORAGE_ERROR_LOG_EVERY == 0:
                logger.error("the database refuses writes (%s); %d messages wait, not"
                             " acknowledged (attempt %d)", exc, len(messages), attempt + 1)
                if on_storage_error is not None:
                    on_storage_error(str(exc))
        pause = COMMIT_RETRY_BACKOFF_S[min(attempt, len(COMMIT_RETRY_BACKOFF_S) - 1)]
        if deadline_s is not None and time.perf_counter() - started + pause > deadline_s:
            raise TimeoutError(f"the database refused writes for {deadline_s:.0f} s")
        sleep(pause)
        attempt += 1


if __name__ == "__main__":
    _batches_fd, _results_fd = sys.argv[1:3]
    _writer_main(Connection(int(_batches_fd), writable=False),
                 Connection(int(_results_fd), readable=False))
