"""One HTTP worker process of `edge-agent run --workers N`.

    python -m edge_agent.api.worker LISTEN_FD

The agent process starts it with the listening socket inherited as LISTEN_FD, the settings
in `EDGE_WORKER_SETTINGS` and the run's shared directory in `EDGE_RUNTIME_DIR`. The worker
answers HTTP only: ingestion stays in the agent process. What it needs from ingestion it
gets through the shared directory (broker status) or does itself (feedback, committed
through its own writer connection: low volume, and SQLite serialises the writers).
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from edge_agent.api.shared import RUNTIME_DIR_ENV, SharedRuntime
from edge_agent.settings import settings_from_json

if TYPE_CHECKING:
    import uvicorn

logger = logging.getLogger(__name__)
WORKER_SETTINGS_ENV = "EDGE_WORKER_SETTINGS"
PARENT_CHECK_S = 1.0


def main(argv: list[str]) -> int:
    import uvicorn

    from edge_agent.api.app import create_app
    from edge_agent.api.server import uvicorn_options

    if WORKER_SETTINGS_ENV not in os.environ or RUNTIME_DIR_ENV not in os.environ or not argv:
        print("edge_agent.api.worker is started by `edge-agent run --workers N`, not by hand",
              file=sys.stderr)
        return 2
    settings = settings_from_json(os.environ[WORKER_SETTINGS_ENV])
    shared = SharedRuntime(Path(os.environ[RUNTIME_DIR_ENV]))
    logging.basicConfig(level=settings.log_level,
                        format="%(asctime)s %(levelname)s worker-%(process)d %(name)s: "
                               "%(message)s")
    listener = socket.socket(fileno=int(argv[0]))
    # The same connection guard as one process: each worker holds its own connections.
    server = uvicorn.Server(uvicorn.Config(create_app(settings, shared),
                                           log_level=settings.log_level.lower(),
                                           access_log=False, **uvicorn_options(settings)))
    threading.Thread(target=_stop_when_orphaned, args=(server,), name="parent-watch",
                     daemon=True).start()
    server.run(sockets=[listener])
    return 0


def _stop_when_orphaned(server: uvicorn.Server) -> None:
    """If the agent process dies without stopping us (SIGKILL, OOM), finish the requests in
    hand and exit: an orphaned worker would keep the port, and the restarted agent could
    not bind it."""
    parent = os.getppid()
    while os.getppid() == parent and not server.should_exit:
        time.sleep(PARENT_CHECK_S)
    if not server.should_exit:
        logger.error("the agent process %d is gone; this worker stops", parent)
        server.should_exit = True


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
