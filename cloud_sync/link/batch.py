"""The uplink's message: a compressed batch of events with a batch id and every event's id.

One codec for the store (encoding) and the lake workers (decoding). The batch id is derived
from the store's outbox (its database's id and the commit-order range the batch covers), so a
batch re-sent after a crash carries the same id and lands on the same lake object.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

FORMAT_VERSION = 1
# AWS IoT Core's limit on one message's payload.
MAX_PAYLOAD_BYTES = 128 * 1024
# zlib level 6: on event JSON about 4x the ratio of level 1 for 2x the CPU, and the link
# (512 KB/s under IoT Core's limits) is the scarce resource, not the store's CPU.
COMPRESSION_LEVEL = 6
# Payloads we refuse to inflate beyond: a hostile or broken batch must not exhaust memory.
MAX_INFLATED_BYTES = 64 * 2**20


class BatchError(ValueError):
    """A payload that is not a valid batch; the message says why."""


@dataclass(frozen=True)
class Batch:
    store_id: str
    batch_id: str
    events: list[dict[str, Any]]

    @property
    def event_ids(self) -> list[str]:
        return [event["event_id"] for event in self.events]


def batch_id_for(outbox_id: str, first_seq: int, last_seq: int) -> str:
    return f"{outbox_id}-{first_seq:012d}-{last_seq:012d}"


def encode_batch(store_id: str, batch_id: str, events: Sequence[dict[str, Any]]) -> bytes:
    body = orjson.dumps({"v": FORMAT_VERSION, "store_id": store_id, "batch_id": batch_id,
                         "events": list(events)})
    return zlib.compress(body, COMPRESSION_LEVEL)


def decode_batch(payload: bytes) -> Batch:
    inflater = zlib.decompressobj()
    try:
        body = inflater.decompress(payload, MAX_INFLATED_BYTES)
    except zlib.error as exc:
        raise BatchError(f"not zlib-compressed: {exc}") from None
    if inflater.unconsumed_tail:
        raise BatchError(f"inflates to more than {MAX_INFLATED_BYTES} bytes")
    try:
        message = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BatchError(f"not JSON: {exc}") from None
    if not isinstance(message, dict) or message.get("v") != FORMAT_VERSION:
        raise BatchError(f"not a version {FORMAT_VERSION} batch")
    store_id, batch_id, events = (message.get(k) for k in ("store_id", "batch_id", "events"))
    if not isinstance(store_id, str) or not store_id:
        raise BatchError("store_id missing")
    if not isinstance(batch_id, str) or not batch_id:
        raise BatchError("batch_id missing")
    if not isinstance(events, list) or not events:
        raise BatchError("events missing or empty")
    for position, event in enumerate(events):
        if not isinstance(event, dict) or not isinstance(event.get("event_id"), str) \
                or not isinstance(event.get("type"), str) or not isinstance(event.get("ts"), str):
            raise BatchError(f"event {position}: needs event_id, type and ts")
    return Batch(store_id, batch_id, events)
