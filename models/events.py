"""The in-store event contract: envelopes, payloads, topics (ARCHITECTURE.md, MQTT in the store).

Defined once here and imported by the edge agent (ingestion, simulator) and the cloud side
(lake reader, retraining): the events *are* the models' raw training data, and `models`
imports no other part, so this is the one place every side can reach.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Annotated, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    model_validator,
)

# Ids travel in topics and primary keys; a bound keeps a broken device from filling the DB.
MAX_ID_LENGTH = 128
Id = Annotated[str, Field(min_length=1, max_length=MAX_ID_LENGTH)]
NonNegative = Annotated[float, Field(ge=0)]

EventType = Literal["pos.transaction", "shelf.reading", "zone.traffic", "presence", "interaction"]
InteractionAction = Literal["impression", "click", "dismiss", "add_to_list"]

# Topic segment → event type carried on it: `stores/{store}/{kind}/{device}`.
TOPIC_KIND_TO_TYPE: dict[str, str] = {
    "pos": "pos.transaction",
    "shelf": "shelf.reading",
    "zone": "zone.traffic",
    "presence": "presence",
    "interaction": "interaction",
}
TYPE_TO_TOPIC_KIND: dict[str, str] = {v: k for k, v in TOPIC_KIND_TO_TYPE.items()}


class _Event(BaseModel):
    # strict: a sensor sending "3" for a count is a bug worth seeing in the dead letters,
    # not something to coerce silently. Unknown extra fields are ignored for forward
    # compatibility with newer device firmware.
    model_config = ConfigDict(strict=True, extra="ignore", allow_inf_nan=False, frozen=True)

    event_id: Id
    store_id: Id
    ts: AwareDatetime


class PosItem(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore", allow_inf_nan=False, frozen=True)

    product_id: Id
    quantity: Annotated[float, Field(gt=0)]
    unit_price: NonNegative
    discount: NonNegative = 0.0


class PosTransaction(_Event):
    type: Literal["pos.transaction"]
    transaction_id: Id
    customer_id: Id | None
    items: Annotated[list[PosItem], Field(min_length=1, max_length=1000)]
    total: float


class ShelfReading(_Event):
    type: Literal["shelf.reading"]
    product_id: Id
    quantity: Annotated[int, Field(ge=0)] | None = None
    weight_g: NonNegative | None = None
    capacity: Annotated[int, Field(gt=0)]

    @model_validator(mode="after")
    def _needs_a_measure(self) -> ShelfReading:
        if self.quantity is None and self.weight_g is None:
            raise ValueError("one of quantity or weight_g is required")
        return self


class ZoneTraffic(_Event):
    type: Literal["zone.traffic"]
    people: Annotated[int, Field(ge=0)]
    avg_dwell_s: NonNegative


class Presence(_Event):
    type: Literal["presence"]
    customer_id: Id
    zone_id: Id


class Interaction(_Event):
    type: Literal["interaction"]
    customer_id: Id | None
    action: InteractionAction
    product_id: Id
    context: Annotated[str, Field(max_length=MAX_ID_LENGTH)] = ""
    model_version: Annotated[str, Field(max_length=MAX_ID_LENGTH)] | None = None


Event = Annotated[
    PosTransaction | ShelfReading | ZoneTraffic | Presence | Interaction,
    Field(discriminator="type"),
]
_EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)


class InvalidEvent(ValueError):
    """A message that breaks the contract; `reason` is what the dead-letter table records."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _describe(error: ValidationError) -> str:
    parts = []
    for err in error.errors(include_url=False)[:5]:
        where = ".".join(str(p) for p in err["loc"]) or "payload"
        if err["type"] == "union_tag_invalid":
            parts.append(f"unknown type {err['input'].get('type')!r}" if isinstance(
                err["input"], dict) else "unknown type")
        elif err["type"] == "union_tag_not_found":
            parts.append("missing field 'type'")
        elif err["type"] == "missing":
            parts.append(f"missing field '{where}'")
        elif err["type"] in ("json_invalid", "json_type"):
            parts.append(f"not valid JSON: {err['msg']}")
        elif err["type"] in ("dict_type", "model_attributes_type") and not err["loc"]:
            parts.append("payload is not a JSON object")
        else:
            parts.append(f"field '{where}': {err['msg']}")
    return "; ".join(parts)


def parse_event(raw: bytes | str) -> Event:
    """Validate one JSON message against the contract, or raise InvalidEvent with a reason."""
    try:
        return _EVENT_ADAPTER.validate_json(raw)
    except ValidationError as exc:
        raise InvalidEvent(_describe(exc)) from None


def event_to_json(event: Event) -> bytes:
    return event.model_dump_json(exclude_none=False).encode()


@dataclass(frozen=True, slots=True)
class Topic:
    store_id: str
    kind: str
    device_id: str

    @property
    def event_type(self) -> str:
        return TOPIC_KIND_TO_TYPE[self.kind]

    def __str__(self) -> str:
        return f"stores/{self.store_id}/{self.kind}/{self.device_id}"


# Topics are per device, so a store has a few hundred: parse each once.
@lru_cache(maxsize=8192)
def parse_topic(topic: str) -> Topic:
    parts = topic.split("/")
    if len(parts) != 4 or parts[0] != "stores" or not all(parts):
        raise InvalidEvent(f"topic {topic!r} is not stores/{{store}}/{{kind}}/{{device}}")
    if parts[2] not in TOPIC_KIND_TO_TYPE:
        raise InvalidEvent(f"topic kind {parts[2]!r} is not one of {sorted(TOPIC_KIND_TO_TYPE)}")
    return Topic(store_id=parts[1], kind=parts[2], device_id=parts[3])


def topic_for(event: Event, device_id: str) -> str:
    return f"stores/{event.store_id}/{TYPE_TO_TOPIC_KIND[event.type]}/{device_id}"


def check_topic_matches(topic: Topic, event: Event) -> None:
    """The topic is the broker's ACL boundary, so a payload must agree with it."""
    if event.store_id != topic.store_id:
        raise InvalidEvent(
            f"payload store_id {event.store_id!r} disagrees with topic store {topic.store_id!r}"
        )
    if event.type != topic.event_type:
        raise InvalidEvent(f"type {event.type!r} not allowed on topic kind {topic.kind!r}")


# Fixed-width RFC 3339 UTC text, so SQLite orders timestamps correctly as strings.
TS_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def format_ts(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime(TS_FORMAT)


def utc_now() -> datetime:
    return datetime.now(UTC)
