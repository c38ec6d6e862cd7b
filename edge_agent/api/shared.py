"""What the agent process and its HTTP worker processes share (`edge-agent run --workers N`):
one private directory per run, holding

- `metrics/`: Prometheus multiprocess files, so `/metrics` on any worker shows ingestion's
  counters (kept by the agent process) and every worker's request latencies together;
- `agent-status.json`: the agent process's heartbeat and its health (broker, commits,
  storage), for `/readyz`;
- `shopper-memo.sqlite`: the workers' shared memo of model answers per shopper
  (`edge_agent/api/shopper_memo.py`).

(Which bundle every worker serves is recorded in the store's bundle folder instead, where it
outlives a restart: `edge_agent/modeling/library.py`.)

Files are replaced atomically (write, then rename), so a reader sees the old or the new
content, never half of one.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge_agent.api.shopper_memo import create_memo_file

RUNTIME_DIR_ENV = "EDGE_RUNTIME_DIR"
# The agent writes its status every second; a status older than this means it is gone.
STATUS_STALE_S = 5.0


@dataclass(frozen=True)
class SharedRuntime:
    root: Path

    @property
    def metrics_dir(self) -> Path:
        return self.root / "metrics"

    @property
    def status_file(self) -> Path:
        return self.root / "agent-status.json"

    @property
    def memo_file(self) -> Path:
        return self.root / "shopper-memo.sqlite"

    def prepare(self) -> None:
        """Create the directory afresh (metric files of an earlier run must not count), with
        an empty memo for the workers to open."""
        self.metrics_dir.mkdir(parents=True, exist_ok=True)
        for stale in self.metrics_dir.glob("*.db"):
            stale.unlink()
        self.status_file.unlink(missing_ok=True)
        for memo in self.root.glob(f"{self.memo_file.name}*"):  # with its -wal and -shm
            memo.unlink()
        create_memo_file(self.memo_file)

    # -- the agent process's status ----------------------------------------------------------
    def write_status(self, health: dict[str, Any]) -> None:
        _write_json(self.status_file, {"health": health, "at": time.time(),
                                       "pid": os.getpid()})

    def agent_health(self) -> dict[str, Any] | None:
        """The agent process's last health report, if it made one recently (else it is
        gone, or hung)."""
        status = _read_json(self.status_file)
        if status is None or time.time() - float(status.get("at", 0)) >= STATUS_STALE_S:
            return None
        health = status.get("health")
        return health if isinstance(health, dict) else None


def _write_json(path: Path, value: dict[str, Any]) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(json.dumps(value))
    os.replace(temporary, path)


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None
