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
# zlib level 6: on a busy store's batches 43 B an event against level 1's 50 B, for 2.5x
# the CPU (benchmarks/uplink.py). The link (512 KB/s under IoT Core's limits) is what binds,
# not the store's CPU, so the smaller payload wins.
COMPRESSION_LEVEL = 6
# Payloads we refuse to inflate beyond: a hostile or broken batch must not exhaust memory.
MAX_INFLATED_BYTES = 64 * 2**20


class BatchError(ValueError):
    """A payload that is not a valid batch; the message says why."""


# The lake's confirmation of a written batch, sent back to the store on
# cmd/instore/{store}/lake-ack: the store keeps events until the lake has them, whatever the
# broker did with the batch (a PUBACK only says the broker took it).
LAKE_ACK_COMMAND = "lake-ack"


@dataclass(frozen=True)
class Batch:
    store_id: str
    batch_id: str
    events: list[dict[str, Any]]
    seq_range: tuple[int, int] | None = None  # the outbox's first and last seq in the batch

    @property
    def event_ids(self) -> list[str]:
        return [event["event_id"] for event in self.events]


def batch_id_for(outbox_id: str, first_seq: int, last_seq: int) -> str:
    return f"{outbox_id}-{first_seq:012d}-{last_seq:012d}"


def encode_batch(store_id: str, batch_id: str, events: Sequence[dict[str, Any]],
                 seq_range: tuple[int, int] | None = None) -> bytes:
    message: dict[str, Any] = {"v": FORMAT_VERSION, "store_id": store_id,
                               "batch_id": batch_id, "events": list(events)}
    if seq_range is not None:
        message["seq"] = list(seq_range)
    return zlib.compress(orjson.dumps(message), COMPRESSION_LEVEL)


def encode_lake_ack(batch: Batch) -> bytes | None:
    if batch.seq_range is None:
        return None
    first, last = batch.seq_range
    return orjson.dumps({"batch_id": batch.batch_id, "first_seq": first, "last_seq": last})


def decode_lake_ack(payload: bytes) -> tuple[int, int]:
    try:
        ack = orjson.loads(payload)
        first, last = int(ack["first_seq"]), int(ack["last_seq"])
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise BatchError(f"not a lake acknowledgement: {exc!r}") from None
    if first > last:
        raise BatchError("first_seq after last_seq")
    return first, last


def inflate_json(payload: bytes) -> Any:
    """A compressed JSON message of the link, inflated to at most MAX_INFLATED_BYTES (a hostile
    payload must not exhaust memory); ValueError saying why it is not one."""
    inflater = zlib.decompressobj()
    try:
        body = inflater.decompress(payload, MAX_INFLATED_BYTES)
    except zlib.error as exc:
        raise ValueError(f"not zlib-compressed: {exc}") from None
    if inflater.unconsumed_tail:
        raise ValueError(f"inflates to more than {MAX_INFLATED_BYTES} bytes")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"not JSON: {exc}") from None


def decode_batch(payload: bytes) -> Batch:
    try:
        message = inflate_json(payload)
    except ValueError as exc:
        raise BatchError(str(exc)) from None
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
    seq = message.get("seq")
    seq_range = None
    if isinstance(seq, list) and len(seq) == 2 and all(isinstance(s, int) for s in seq):
        seq_range = (seq[0], seq[1])
    return Batch(store_id, batch_id, events, seq_range)
