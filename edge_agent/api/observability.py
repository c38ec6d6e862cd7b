"""Per-route request latency for Prometheus, labelled by route template (never raw paths)."""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Gauge, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from edge_agent.modeling.loaded import LoadedModels

# Buckets around the targets: p99 < 20 ms for personal endpoints, < 200 ms for anything.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.1, 0.2, 0.5,
                   1.0)


class LatencyMetrics:
    """Plain ASGI middleware: Starlette's `BaseHTTPMiddleware` runs each request through an
    extra task and memory streams, which cost as much as a small handler."""

    def __init__(self, app: ASGIApp, registry: CollectorRegistry) -> None:
        self.app = app
        self.histogram = Histogram("edge_http_request_seconds", "HTTP request latency by route",
                                   ["route", "method", "status"], buckets=LATENCY_BUCKETS,
                                   registry=registry)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client sees if the app fails before starting a response

        async def send_and_note_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note_status)
        finally:
            self.histogram.labels(_route_template(scope), scope["method"],
                                  str(status)).observe(time.perf_counter() - started)


class ModelVersionMetric:
    """`edge_model_version_info{name, version}`: 1 for the bundle this process serves, 0 for
    the one it served before. With HTTP workers each worker reports its own (a `pid` label),
    so a version that did not reach every worker shows."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._gauge = Gauge("edge_model_version_info", "Model bundle served (1) or replaced (0)",
                            ["name", "version"], registry=registry, multiprocess_mode="liveall")

    def swapped(self, old: LoadedModels | None, new: LoadedModels) -> None:
        if old is not None:
            self._gauge.labels(old.name, old.version).set(0)
        self._gauge.labels(new.name, new.version).set(1)


def _route_template(scope: Scope) -> str:
    # The router records the matched route in the (shared) scope on the way in.
    route = scope.get("route")
    return getattr(route, "path", None) or "unmatched"
