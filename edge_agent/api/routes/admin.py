"""Admin: which models are served, loading a new bundle, rolling back."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from edge_agent.api.auth import Caller, allow
from edge_agent.api.errors import ServingError
from edge_agent.api.routes import API_PREFIX
from edge_agent.api.state import ServingState, serving_state
from edge_agent.modeling.library import OutsideBundleFolder
from edge_agent.modeling.loaded import LoadedModels
from edge_agent.modeling.registry import BundleRefused

router = APIRouter(prefix=f"{API_PREFIX}/admin", tags=["admin"])
State = Annotated[ServingState, Depends(serving_state)]
Admin = Annotated[Caller, Depends(allow("admin"))]


class BundleRefusedError(ServingError):
    status_code = 422
    code = "bundle_refused"


class NothingToRollBack(ServingError):
    status_code = 409
    code = "no_previous_version"


class ModelVersion(BaseModel):
    version: str
    name: str
    loaded_at: str
    models: list[str]
    on_event_loop: list[str] = Field(description="the models the smoke test found fast enough"
                                                 " to run on the HTTP event loop; the others"
                                                 " run on a model thread, with a deadline")
    metrics: dict[str, Any]
    training_data: dict[str, Any]


class ModelsStatus(BaseModel):
    active: ModelVersion | None
    previous: ModelVersion | None


class LoadRequest(BaseModel):
    path: str = Field(min_length=1, max_length=4096,
                      description="bundle directory or .tar.gz inside the store's bundle folder"
                                  " (absolute, or relative to it)")
    rollback: bool = Field(default=False, description="allow a version older than the served"
                                                      " one (an explicit rollback)")


def _describe(loaded: LoadedModels | None) -> ModelVersion | None:
    if loaded is None:
        return None
    return ModelVersion(version=loaded.version, name=loaded.name, loaded_at=loaded.loaded_at,
                        models=loaded.model_names, on_event_loop=sorted(loaded.on_loop),
                        metrics=loaded.manifest.get("metrics", {}),
                        training_data=loaded.manifest.get("training_data", {}))


def _status(state: ServingState) -> ModelsStatus:
    return ModelsStatus(active=_describe(state.models.current),
                        previous=_describe(state.models.previous))


@router.get("/models", response_model=ModelsStatus, summary="Models being served")
async def get_models(state: State, _caller: Admin) -> ModelsStatus:
    return _status(state)


@router.post("/models/load", response_model=ModelsStatus,
             summary="Verify and hot-swap in a signed bundle; a refused one changes nothing",
             responses={422: {"description": "bundle refused (reason given)"}})
def load_models(body: LoadRequest, state: State, _caller: Admin) -> ModelsStatus:
    library = state.models.library
    try:
        if library is None:
            raise BundleRefused(body.path, "no fleet public key configured (model_public_key)")
        try:
            path = library.inside(body.path)
        except OutsideBundleFolder as exc:
            raise BundleRefused(body.path, str(exc)) from exc
        state.models.load(path, rollback=body.rollback)
    except BundleRefused as exc:
        raise BundleRefusedError(exc.reason, path=body.path) from exc
    return _status(state)


@router.post("/models/rollback", response_model=ModelsStatus,
             summary="Serve the previous model version again",
             responses={409: {"description": "no previous version"}})
def rollback_models(state: State, _caller: Admin) -> ModelsStatus:
    try:
        state.models.rollback()
    except LookupError as exc:
        raise NothingToRollBack(str(exc)) from exc
    except BundleRefused as exc:
        raise BundleRefusedError(exc.reason) from exc
    return _status(state)
