"""What the lifespan creates and the handlers use: one object, handed out by `serving_state`."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from fastapi import Request
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from edge_agent.agent_health import AgentHealth
from edge_agent.api.auth import KeyRing
from edge_agent.api.cache import TtlCache
from edge_agent.api.database import ReadConnections
from edge_agent.api.model_calls import ModelCalls
from edge_agent.api.shared import SharedRuntime
from edge_agent.api.shopper_memo import ShopperMemo
from edge_agent.modeling.registry import ModelRegistry
from edge_agent.settings import Settings
from edge_agent.wayfinding import LiveStoreMap, StoreMap

if TYPE_CHECKING:
    from edge_agent.agent import Agent


class IngestLink(Protocol):
    """What handlers need of the agent, in this process or the agent process beside it."""

    @property
    def connected(self) -> bool: ...

    def health(self) -> AgentHealth: ...

    def submit(self, topic: str, payload: bytes, timeout: float) -> bool: ...


@dataclass
class ServingState:
    settings: Settings
    ingest: IngestLink
    reads: ReadConnections
    keyring: KeyRing
    models: ModelRegistry
    live_map: LiveStoreMap
    metrics_registry: CollectorRegistry
    memo: ShopperMemo
    model_calls: ModelCalls
    agent: Agent | None = None  # None in a worker of `run --workers N`
    shared: SharedRuntime | None = None  # set in such a worker
    cache: TtlCache = field(default_factory=TtlCache)
    # The map handlers use, pinned per request by `for_request`: a request that started on
    # one layout ends on it while an imported one is swapped in.
    store_map: StoreMap = field(init=False)

    def __post_init__(self) -> None:
        self.store_map = self.live_map.current

    def for_request(self) -> ServingState:
        """This state with the store map of this moment (a shallow copy once it changed)."""
        current = self.live_map.current
        if current is self.store_map:
            return self
        view = copy.copy(self)
        view.store_map = current
        return view

    def metrics_text(self) -> bytes:
        """The Prometheus exposition: this process's registry, or in a worker, every
        process of the run (ingestion's counters and all workers' latencies)."""
        if self.shared is None:
            return generate_latest(self.metrics_registry)
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=str(self.shared.metrics_dir))
        return generate_latest(registry)


async def serving_state(request: Request) -> ServingState:
    return request.app.state.serving.for_request()
