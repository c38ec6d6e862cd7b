"""What the lifespan creates and the handlers use: one object, handed out by `serving_state`."""

from __future__ import annotations

from dataclasses import dataclass, field

from fastapi import Request

from edge_agent.agent import Agent
from edge_agent.api.auth import KeyRing
from edge_agent.api.cache import TtlCache
from edge_agent.api.database import ReadConnections
from edge_agent.modeling.registry import ModelRegistry
from edge_agent.settings import Settings
from edge_agent.wayfinding import StoreMap


@dataclass
class ServingState:
    settings: Settings
    agent: Agent
    reads: ReadConnections
    keyring: KeyRing
    models: ModelRegistry
    store_map: StoreMap
    cache: TtlCache = field(default_factory=TtlCache)


async def serving_state(request: Request) -> ServingState:
    return request.app.state.serving
