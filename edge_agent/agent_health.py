"""What readiness reports about the agent process. Its own module so HTTP workers, which
read it from the shared directory, need none of ingestion's code."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class AgentHealth:
    """What readiness reports about the agent process (also handed to HTTP workers)."""

    broker: bool  # connected and subscribed
    committing: bool  # no message has waited COMMIT_STALL_S for its commit
    stall_s: float
    storage: str  # ok, low (free space under the alarm), failing (the database refuses writes)
    storage_detail: str | None
    free_bytes: int | None
    failed: str | None = None  # the agent gave up (restart budget spent): why
    link: dict[str, Any] | None = None  # the cloud link's LinkStatus; None: no link configured
    broker_refusal: str | None = None  # why the broker refused our CONNECT, while it does

    @property
    def storage_ok(self) -> bool:
        return self.storage in ("ok", "low")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, value: dict[str, Any]) -> AgentHealth:
        return cls(**{name: value.get(name) for name in cls.__dataclass_fields__})

    @classmethod
    def gone(cls, why: str) -> AgentHealth:
        return cls(broker=False, committing=False, stall_s=0.0, storage="unknown",
                   storage_detail=why, free_bytes=None, failed=why)
