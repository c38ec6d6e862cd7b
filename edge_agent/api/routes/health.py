"""Probes and metrics, unauthenticated as probes and scrapers expect (keep them on the store
network): liveness, readiness, Prometheus."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST

from edge_agent.api.state import ServingState, serving_state

router = APIRouter(tags=["admin"])
State = Annotated[ServingState, Depends(serving_state)]


@router.get("/healthz", summary="Liveness: the process answers")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="Readiness: database open, broker connected, messages being "
                                 "committed, storage taking writes; `degraded` says what "
                                 "works in a reduced way (no models: store favourites)",
            responses={503: {"description": "not ready; `checks` says what is missing"}})
async def readyz(state: State) -> Any:
    health = state.ingest.health()
    checks = {"database": _database_ok(state), "broker": health.broker,
              "committing": health.committing, "storage": health.storage_ok,
              "models": state.models.current is not None}
    # Without a model bundle (a new store's first day) the store still serves: store
    # favourites instead of personal answers. Ready, and it says so.
    ready = all(ok for name, ok in checks.items() if name != "models") and health.failed is None
    degraded = [] if checks["models"] else [
        "models: no model bundle loaded; personal answers fall back to store favourites"]
    if health.storage == "low":
        degraded.append(f"storage: low ({health.storage_detail})")
    link = health.link
    if link is not None and link.get("alarm"):
        degraded.append(f"link: {link['alarm']}")
    elif link is not None and link.get("state") != "connected":
        # No cloud is not a reason to stop serving: ready, and it says so.
        degraded.append(f"link: {link.get('state')}; events wait in the outbox")
    body = {"ready": ready, "checks": checks, "degraded": degraded,
            "storage": {"state": health.storage, "detail": health.storage_detail,
                        "free_bytes": health.free_bytes},
            "commit_wait_s": health.stall_s, "link": link}
    if health.failed is not None:
        body["failed"] = health.failed
    if health.broker_refusal is not None:  # what to fix, without reading the log
        body["broker_refused"] = health.broker_refusal
    return JSONResponse(body, status_code=200 if ready else 503)


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(state: State) -> Response:
    return Response(state.metrics_text(),
                    media_type=CONTENT_TYPE_LATEST)


def _database_ok(state: ServingState) -> bool:
    try:
        state.reads.get().execute("SELECT 1 FROM schema_migrations LIMIT 1").fetchone()
    except Exception:
        return False
    return True
