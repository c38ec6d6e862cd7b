"""Serving the app from a background thread (the demo, benchmarks); `edge-agent run` uses
uvicorn in the foreground instead."""

from __future__ import annotations

import threading
import time

import uvicorn
from fastapi import FastAPI

from edge_agent.agent import Agent

# Start-up runs the lifespan: database migrations and the writer process take a second or two.
START_TIMEOUT_S = 30.0


class BackgroundServer:
    def __init__(self, app: FastAPI, host: str, port: int) -> None:
        self.app = app
        self.url = f"http://{host}:{port}"
        # uvicorn installs signal handlers only on the main thread, so the caller keeps them.
        self._server = uvicorn.Server(uvicorn.Config(app, host=host, port=port,
                                                     log_level="warning", access_log=False))
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
