"""`edge-agent run --workers N`: ingestion in this process, HTTP in N worker processes.

The request handlers are CPU-bound Python (features, ONNX, a route search), and one Python
process uses one core at most; with ingestion's network loop in the same process they also
queue behind it for the GIL. So this process binds the port, runs ingestion, and starts N
`python -m edge_agent.api.worker` processes that all accept on the inherited socket.

A worker that dies is started again. SIGTERM or Ctrl-C stops the workers first (they finish
the requests in hand), then ingestion.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from edge_agent.api.shared import RUNTIME_DIR_ENV, SharedRuntime
from edge_agent.api.worker import WORKER_SETTINGS_ENV
from edge_agent.settings import Settings, SettingsError, settings_to_json

logger = logging.getLogger(__name__)
STATUS_INTERVAL_S = 1.0
WORKER_STOP_TIMEOUT_S = 15.0
# A worker that dies right after starting (a broken install, a port problem) is restarted
# after a pause, not in a tight loop.
RESTART_DELAY_S = 2.0
LISTEN_BACKLOG = 2048


def enable_multiprocess_metrics(directory: Path) -> None:
    """Metrics created from now on in this process are kept in `directory`, where any
    worker's `/metrics` collects them. (prometheus_client chooses its value store when
    first imported; this process imported it long before knowing it would have workers.)"""
    from prometheus_client import values

    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory)
    values.ValueClass = values.MultiProcessValue()


def serve_with_workers(settings: Settings) -> int:
    from prometheus_client.multiprocess import MultiProcessCollector

    from edge_agent.agent import Agent
    from edge_agent.periodic import PeriodicTask

    try:
        listener = socket.create_server((settings.http_host, settings.port),
                                        backlog=LISTEN_BACKLOG)
    except OSError as exc:
        raise SettingsError(f"port (EDGE_PORT): cannot listen on {settings.http_host}:"
                            f"{settings.port}: {exc.strerror or exc}") from None
    listener.set_inheritable(True)
    shared = SharedRuntime(Path(tempfile.mkdtemp(prefix="edge-agent-run-")))
    shared.prepare()
    enable_multiprocess_metrics(shared.metrics_dir)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())

    def give_up(_why: str) -> None:
        failed.set()
        stop.set()

    failed = threading.Event()
    # Release probation reads the workers' latency histograms from their shared files.
    workers_metrics = MultiProcessCollector(None, path=str(shared.metrics_dir))
    agent = Agent(settings, load_models=False, on_fatal=give_up,
                  serving_metrics=workers_metrics.collect)
    try:
        agent.start()
        status = PeriodicTask("agent-status",
                              lambda: shared.write_status(agent.health().to_dict()),
                              STATUS_INTERVAL_S)
        shared.write_status(agent.health().to_dict())
        status.start()
        pool = WorkerPool(settings, shared, listener)
        logger.info("serving http://%s:%d with %d workers", settings.http_host, settings.port,
                    settings.http_workers)
        try:
            pool.start()
            while not stop.wait(0.5):
                pool.restart_dead()
        finally:
            pool.stop()
            status.stop()
    finally:
        agent.stop()
        listener.close()
        _remove_tree(shared.root)
    return 1 if failed.is_set() else 0


class WorkerPool:
    def __init__(self, settings: Settings, shared: SharedRuntime,
                 listener: socket.socket) -> None:
        self._count = settings.http_workers
        self._listener = listener
        self._env = {**os.environ, WORKER_SETTINGS_ENV: settings_to_json(settings),
                     RUNTIME_DIR_ENV: str(shared.root),
                     "PROMETHEUS_MULTIPROC_DIR": str(shared.metrics_dir)}
        self._metrics_dir = shared.metrics_dir
        self._workers: list[subprocess.Popen[bytes]] = []

    def start(self) -> None:
        self._workers = [self._spawn() for _ in range(self._count)]

    def _spawn(self) -> subprocess.Popen[bytes]:
        fd = self._listener.fileno()
        # A session of its own: Ctrl-C reaches this process only, which stops the workers
        # itself, in order, instead of racing them.
        return subprocess.Popen([sys.executable, "-m", "edge_agent.api.worker", str(fd)],
                                env=self._env, pass_fds=(fd,), stdin=subprocess.DEVNULL,
                                start_new_session=True)

    def restart_dead(self) -> None:
        for index, worker in enumerate(self._workers):
            code = worker.poll()
            if code is None:
                continue
            logger.error("HTTP worker %d exited with %s; starting another", worker.pid, code)
            _forget_metrics_of(self._metrics_dir, worker.pid)
            time.sleep(RESTART_DELAY_S)
            self._workers[index] = self._spawn()

    def stop(self) -> None:
        for worker in self._workers:
            if worker.poll() is None:
                worker.send_signal(signal.SIGTERM)
        for worker in self._workers:
            try:
                worker.wait(WORKER_STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()


def _forget_metrics_of(directory: Path, pid: int) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(pid, str(directory))


def _remove_tree(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)
