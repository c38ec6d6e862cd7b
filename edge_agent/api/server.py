"""uvicorn's options for the agent (connection limits before parsing), and serving the app
from a background thread (the demo, benchmarks); `edge-agent run` runs uvicorn in the
foreground with the same options."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import uvicorn
from fastapi import FastAPI

from edge_agent.agent import Agent
from edge_agent.api.connections import ConnectionGuard, connection_limit, guarded_protocol_class
from edge_agent.settings import Settings

logger = logging.getLogger(__name__)

# Start-up runs the lifespan: database migrations and the writer process take a second or two.
START_TIMEOUT_S = 30.0


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for `uvicorn.Config`/`uvicorn.run`: the guarded HTTP protocol and
    the timeouts and limits of the settings. One guard per call: call it once per server."""
    limit = connection_limit(settings.http_max_connections)
    if limit < settings.http_max_connections:
        logger.warning("HTTP connections limited to %d by the file limit (raise LimitNOFILE)",
                       limit)
    guard = ConnectionGuard(limit, settings.http_header_timeout_s,
                            settings.http_max_header_bytes)
    return {"http": guarded_protocol_class(guard),
            "timeout_keep_alive": settings.http_keepalive_s,
            "h11_max_incomplete_event_size": settings.http_max_header_bytes,
            "backlog": settings.http_backlog}


class BackgroundServer:
    def __init__(self, app: FastAPI, host: str, port: int,
                 settings: Settings | None = None) -> None:
        self.app = app
        self.url = f"http://{host}:{port}"
        # Without settings, the defaults (model_construct: no environment, no validation).
        options = uvicorn_options(settings or Settings.model_construct())
        # uvicorn installs signal handlers only on the main thread, so the caller keeps them.
        self._server = uvicorn.Server(uvicorn.Config(app, host=host, port=port,
                                                     log_level="warning", access_log=False,
                                                     **options))
        self._thread = threading.Thread(target=self._server.run, name="http", daemon=True)

    def start(self) -> BackgroundServer:
        self._thread.start()
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"HTTP server did not start on {self.url}")
            time.sleep(0.05)
        return self

    @property
    def agent(self) -> Agent:
        agent: Agent | None = self.app.state.serving.agent
        assert agent is not None, "a background server runs ingestion in process"
        return agent

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(START_TIMEOUT_S)
