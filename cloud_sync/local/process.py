"""Ending a local stand-in's process (a broker, moto): a signal, a bounded wait, then a kill."""

from __future__ import annotations

import signal
import subprocess

STOP_TIMEOUT_S = 5.0


def end_process(process: subprocess.Popen[bytes] | None, sig: signal.Signals,
                timeout: float = STOP_TIMEOUT_S) -> None:
    """Send `sig` (SIGTERM: let it save and exit; SIGKILL: a crash), wait up to `timeout`,
    then kill whatever is left. A process already gone is left alone."""
    if process is None or process.poll() is not None:
        return
    process.send_signal(sig)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout)
