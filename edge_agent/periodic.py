"""A background thread that runs one job every few seconds until stopped (bundle watching,
congestion updates). The job never kills the thread: a failure is logged and retried."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

logger = logging.getLogger(__name__)


class PeriodicTask:
    def __init__(self, name: str, job: Callable[[], object], interval_s: float) -> None:
        self._name = name
        self._job = job
        self._interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(self._interval_s + 5)

    def _run(self) -> None:
        while not self._stop.wait(self._interval_s):
            try:
                self._job()
            except Exception:
                logger.exception("background task %s failed; retrying in %.0f s", self._name,
                                 self._interval_s)
