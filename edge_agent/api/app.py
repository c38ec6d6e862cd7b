"""The FastAPI app. Its lifespan owns the agent (ingestion, database) and the read
connections; `edge-agent run` serves it with uvicorn, tests enter `with TestClient(app)`."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from prometheus_client import CollectorRegistry

from edge_agent.api.auth import KeyRing
from edge_agent.api.database import ReadConnections
from edge_agent.api.errors import install_error_handlers
from edge_agent.api.limits import BodyLimit
from edge_agent.api.model_calls import ModelCalls
from edge_agent.api.observability import LatencyMetrics, ModelVersionMetric
from edge_agent.api.routes import (
    admin,
    displays,
    feedback,
    health,
    products,
    recommendations,
    shoppers,
    staff,
    store,
    wayfinding,
)
from edge_agent.api.shared import SharedRuntime
from edge_agent.api.shopper_memo import ShopperMemo
from edge_agent.api.state import IngestLink, ServingState
from edge_agent.api.worker_runtime import WorkerIngest
from edge_agent.masterdata.layout import LAYOUT_CHECK_INTERVAL_S, layout_to_follow
from edge_agent.metrics import AgentMetrics
from edge_agent.modeling.watcher import BundleWatcher, make_registry, start_models
from edge_agent.periodic import PeriodicTask
from edge_agent.settings import Settings
from edge_agent.wayfinding import LiveStoreMap
from kiosk_ui import STATIC_DIR

if TYPE_CHECKING:
    from edge_agent.agent import Agent

logger = logging.getLogger(__name__)
UI_PATH = "/ui"
DOCS_ASSETS_PATH = "/docs-assets"
# How soon a worker follows a bundle an admin loaded through another worker.
FOLLOW_INTERVAL_S = 1.0


def create_app(settings: Settings, shared: SharedRuntime | None = None, *,
               on_fatal: Callable[[str], None] | None = None) -> FastAPI:
    """The app. Without `shared`, its lifespan runs the agent in this process too (tests,
    the demo, `edge-agent run` with one worker; `on_fatal` is told if the agent gives up).
    With it, this is one HTTP worker of `edge-agent run --workers N`, beside the agent
    process."""
    if shared is None:
        # Only here: an HTTP worker of `run --workers N` needs none of ingestion's code.
        from edge_agent.agent import Agent

        agent_metrics = AgentMetrics()
        metrics_registry = agent_metrics.registry
        model_metric = ModelVersionMetric(metrics_registry)
        agent: Agent | None = Agent(settings, metrics=agent_metrics,
                                    on_model_swap=model_metric.swapped, on_fatal=on_fatal)
    else:
        agent = None
        metrics_registry = CollectorRegistry()
        model_metric = ModelVersionMetric(metrics_registry)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        ingest: IngestLink
        watcher: BundleWatcher | None = None
        if agent is not None:
            agent.start()
            ingest, registry = agent, agent.models
        else:
            assert shared is not None
            ingest = WorkerIngest(settings, shared)
            registry = make_registry(settings, on_swap=model_metric.swapped)
        reads = ReadConnections(settings.db)
        store_map = LiveStoreMap(settings.layout, follow=layout_to_follow(settings))
        app.state.serving = ServingState(settings=settings, ingest=ingest, reads=reads,
                                         keyring=KeyRing(settings.api_keys), models=registry,
                                         live_map=store_map, metrics_registry=metrics_registry,
                                         agent=agent, shared=shared,
                                         memo=ShopperMemo(
                                             settings.shopper_memo_s, metrics_registry,
                                             None if shared is None else shared.memo_file),
                                         model_calls=ModelCalls(
                                             settings.model_threads,
                                             settings.model_deadline_ms / 1000,
                                             settings.model_niceness))
        tasks = [PeriodicTask("congestion", lambda: store_map.refresh_congestion(reads.get()),
                              settings.congestion_interval_s),
                 # The operator's `edge-agent import layout` reaches every worker.
                 PeriodicTask("layout-follower", store_map.follow, LAYOUT_CHECK_INTERVAL_S)]
        if shared is not None:
            # Another worker's swap (an admin's load or rollback) reaches this one.
            tasks.append(PeriodicTask("bundle-follower", registry.follow, FOLLOW_INTERVAL_S))
            watcher = start_models(settings, registry)
        for task in tasks:
            task.start()
        if not settings.api_keys:
            logger.warning("no API keys configured (EDGE_API_KEYS): every /v1 call gets 401")
        # Everything made so far (the app, the models, the catalog) lives as long as the
        # process: out of the collector's sight, a full collection no longer walks it all,
        # which paused request handling for 100-180 ms under load.
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            gc.unfreeze()  # what this app made can be collected once it is gone
            for task in tasks:
                task.stop()
            if watcher is not None:
                watcher.stop()
            app.state.serving.cache.close()
            app.state.serving.memo.close()
            app.state.serving.model_calls.close()
            reads.close()
            if agent is not None:
                agent.stop()

    app = FastAPI(title="In-store personalization edge agent", version="0.1.0",
                  lifespan=lifespan, docs_url=None,
                  description="Recommendations, shopping lists, routes and staff tools for one "
                              "store, served from the store itself. Send `X-API-Key`.")
    _serve_docs_offline(app)
    install_error_handlers(app)
    app.add_middleware(LatencyMetrics, registry=metrics_registry)
    # Added last, so it runs first: a too-big body is refused before anything reads it.
    app.add_middleware(BodyLimit, max_bytes=settings.http_max_body_bytes,
                       timeout_s=settings.http_body_timeout_s)
    for module in (health, store, shoppers, recommendations, wayfinding, displays, products,
                   staff, feedback, admin):
        app.include_router(module.router)
    # The pages call the API from the same origin, so no CORS is needed.
    app.mount(UI_PATH, StaticFiles(directory=STATIC_DIR, html=True), name="ui")
    return app


def _serve_docs_offline(app: FastAPI) -> None:
    """`/docs` from Swagger UI's files in the package, not from a CDN: a store's network may
    have no internet, and the page would be blank."""
    from fastapi.openapi.docs import get_swagger_ui_html
    from fastapi.responses import HTMLResponse
    from swagger_ui_bundle import swagger_ui_path

    app.mount(DOCS_ASSETS_PATH, StaticFiles(directory=str(swagger_ui_path)), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json", title=f"{app.title} — API",
            swagger_js_url=f"{DOCS_ASSETS_PATH}/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_ASSETS_PATH}/swagger-ui.css",
            swagger_favicon_url=f"{DOCS_ASSETS_PATH}/favicon-32x32.png")
