"""The in-store event contract: envelopes, payloads, topics (ARCHITECTURE.md, MQTT in the store).

Defined once here and imported by the edge agent (ingestion, simulator) and the cloud side
(lake reader, retraining): the events *are* the models' raw training data, and `models`
imports no other part, so this is the one place every side can reach.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
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
# stores/{store}/{kind}/{device}: four segments of at most MAX_ID_LENGTH each.
MAX_TOPIC_LENGTH = 4 * MAX_ID_LENGTH + 3
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
    """A message that breaks the contract. `reason` is what the dead-letter table records;
    `kind` is a low-cardinality label for it (the dead-letter metric's `reason` label)."""

    def __init__(self, reason: str, kind: str = "invalid") -> None:
        super().__init__(reason)
        self.reason = reason
        self.kind = kind


# Validation error kinds, most specific first: the first error decides the message's kind.
def _kind_of(error_type: str, where: str) -> str:
    if error_type == "union_tag_invalid":
        return "unknown_type"
    if error_type in ("union_tag_not_found", "missing"):
        return "missing_field"
    if error_type in ("json_invalid", "json_type"):
        return "not_json"
    if error_type in ("dict_type", "model_attributes_type") and not where:
        return "not_json"
    return "bad_field"


def _describe(error: ValidationError) -> InvalidEvent:
    parts = []
    errors = error.errors(include_url=False)
    for err in errors[:5]:
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
    first = errors[0] if errors else {"type": "", "loc": ()}
    kind = _kind_of(first["type"], ".".join(str(p) for p in first["loc"]))
    return InvalidEvent("; ".join(parts), kind)


def parse_event(raw: bytes | str) -> Event:
    """Validate one JSON message against the contract, or raise InvalidEvent with a reason."""
    try:
        return _EVENT_ADAPTER.validate_json(raw)
    except ValidationError as exc:
        raise _describe(exc) from None


@dataclass(frozen=True, slots=True)
class TimeBounds:
    """The timestamps a store accepts: nothing before `earliest` (a device with a reset
    clock says 1970), nothing more than `max_ahead` past the receiver's clock (a far-future
    reading would otherwise stay the "latest" one until that date comes)."""

    earliest: datetime
    max_ahead: timedelta

    def check(self, event: Event, now: datetime) -> None:
        ts = event.ts
        try:
            ts = ts.astimezone(UTC)
        except (OverflowError, ValueError):  # 0001-01-01T00:00+01:00 has no UTC year
            raise InvalidEvent(f"field 'ts': {event.ts.isoformat()} is out of range",
                               "ts_out_of_range") from None
        if ts < self.earliest:
            raise InvalidEvent(f"field 'ts': {format_ts(ts)} is before the earliest accepted"
                               f" {format_ts(self.earliest)}", "ts_out_of_range")
        if ts > now + self.max_ahead:
            raise InvalidEvent(f"field 'ts': {format_ts(ts)} is more than"
                               f" {self.max_ahead.total_seconds():.0f} s ahead of this"
                               f" receiver's clock ({format_ts(now)})", "ts_out_of_range")


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
    if len(topic) > MAX_TOPIC_LENGTH:
        raise InvalidEvent(f"topic of {len(topic)} characters is longer than"
                           f" {MAX_TOPIC_LENGTH}", "bad_topic")
    parts = topic.split("/")
    if len(parts) != 4 or parts[0] != "stores" or not all(parts):
        raise InvalidEvent(f"topic {topic!r} is not stores/{{store}}/{{kind}}/{{device}}",
                           "bad_topic")
    if parts[2] not in TOPIC_KIND_TO_TYPE:
        raise InvalidEvent(f"topic kind {parts[2]!r} is not one of {sorted(TOPIC_KIND_TO_TYPE)}",
                           "bad_topic")
    if any(len(part) > MAX_ID_LENGTH for part in parts):
        raise InvalidEvent(f"a topic segment is longer than {MAX_ID_LENGTH} characters",
                           "bad_topic")
    return Topic(store_id=parts[1], kind=parts[2], device_id=parts[3])


def topic_for(event: Event, device_id: str) -> str:
    return f"stores/{event.store_id}/{TYPE_TO_TOPIC_KIND[event.type]}/{device_id}"


def check_topic_matches(topic: Topic, event: Event) -> None:
    """The topic is the broker's ACL boundary, so a payload must agree with it."""
    if event.store_id != topic.store_id:
        raise InvalidEvent(
            f"payload store_id {event.store_id!r} disagrees with topic store {topic.store_id!r}",
            "store_mismatch")
    if event.type != topic.event_type:
        raise InvalidEvent(f"type {event.type!r} not allowed on topic kind {topic.kind!r}",
                           "topic_mismatch")


# Fixed-width RFC 3339 UTC text, so SQLite orders timestamps correctly as strings.
TS_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def format_ts(ts: datetime) -> str:
    # Not strftime: it writes year 999 as "999", which sorts after "2026".
    ts = ts.astimezone(UTC)
    return (f"{ts.year:04d}-{ts.month:02d}-{ts.day:02d}T{ts.hour:02d}:{ts.minute:02d}:"
            f"{ts.second:02d}.{ts.microsecond:06d}Z")


def utc_now() -> datetime:
    return datetime.now(UTC)
