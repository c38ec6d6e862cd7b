"""What every benchmark report says about where it ran, and its progress lines (stderr, so
the table on stdout stays clean)."""

from __future__ import annotations

import contextlib
import os
import platform
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


def machine() -> dict[str, Any]:
    """The machine and its load at the start: numbers only compare on a like machine."""
    model = ""
    with contextlib.suppress(OSError):
        model = next((line.split(":", 1)[1].strip()
                      for line in Path("/proc/cpuinfo").read_text().splitlines()
                      if line.startswith("model name")), "")
    return {"cpus": os.cpu_count(), "cpu": model or platform.processor(),
            "python": platform.python_version(), "load_avg": os.getloadavg(),
            "date": datetime.now(UTC).isoformat(timespec="seconds")}


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)
