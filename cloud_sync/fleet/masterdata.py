"""The chain's master data, down to its stores: a file validated here (errors naming the row
and field, nothing sent), cut into messages of at most 128 KB, published at QoS 1 on each
store's `cmd/instore/{store}/masterdata`, and the stores' results collected from
`dt/instore/{store}/masterdata-results`.

A store that is offline gets its messages when it reconnects (its persistent session holds
them: up to IoT Core's session expiry, 1 hour by default and up to 7 days if raised). An
erasure also takes the shopper out of the lake, by pseudonym.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from awscrt import mqtt5

from cloud_sync.fleet.provision import FLEET_GROUP
from cloud_sync.lake.store import Lake
from cloud_sync.link.masterdata import MASTER_DATA_COMMAND, RESULTS_SUFFIX, encode_chunks
from cloud_sync.link.mqtt import LinkClient, publish_all
from cloud_sync.link.privacy import pseudonymize
from cloud_sync.topics import command_topic
from models.masterdata.files import read_records
from models.masterdata.records import validate

logger = logging.getLogger(__name__)

RESULTS_FILTER = f"dt/instore/+/{RESULTS_SUFFIX}"


@dataclass
class PushOutcome:
    kind: str
    version: int
    batches: list[str]  # batch ids, in order, the same for every store
    stores: list[str]
    results: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # by store

    def missing(self) -> list[str]:
        """Stores that have not reported every batch yet."""
        return [s for s in self.stores
                if len({r.get("batch_id") for r in self.results.get(s, [])}
                       & set(self.batches)) < len(self.batches)]


class ResultCollector:
    """The stores' results, as they arrive (subscribe before publishing)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self.results: dict[str, list[dict[str, Any]]] = {}

    def on_publish(self, packet: mqtt5.PublishPacket) -> None:
        try:
            result = orjson.loads(packet.payload or b"")
        except orjson.JSONDecodeError:
            logger.warning("an unreadable result on %s", packet.topic)
            return
        store = packet.topic.split("/")[2]
        with self._changed:
            self.results.setdefault(store, []).append(result)
            self._changed.notify_all()

    def wait(self, outcome: PushOutcome, timeout: float) -> None:
        with self._changed:
            outcome.results = self.results
            self._changed.wait_for(lambda: not outcome.missing(), timeout)


def read_and_validate(kind: str, path: Path) -> list[tuple[int, dict[str, Any]]]:
    """The file's rows, or MasterDataError naming every bad row (nothing is sent)."""
    rows = read_records(path)
    validate(kind, rows)
    return rows


def all_stores(iot: Any) -> list[str]:
    stores: list[str] = []
    for page in iot.get_paginator("list_things_in_thing_group").paginate(
            thingGroupName=FLEET_GROUP):
        stores.extend(page.get("things", []))
    return sorted(stores)


def push(link: LinkClient, stores: Sequence[str], kind: str,
         rows: Sequence[tuple[int, dict[str, Any]]], *, version: int,
         source: bytes) -> PushOutcome:
    """Publish the records to every store; raises if the broker refuses a message."""
    prefix = f"{kind}-{version}-{hashlib.sha256(source).hexdigest()[:12]}"
    payloads = encode_chunks(kind, version, rows, prefix)
    batches = [f"{prefix}-{i + 1:04d}of{len(payloads):04d}" for i in range(len(payloads))]
    for store in stores:
        publish_all(link, command_topic(store, MASTER_DATA_COMMAND), payloads,
                    f"master data for {store}")
    return PushOutcome(kind, version, batches, list(stores))


def erase_from_lake(lake: Lake, pseudonym_key: bytes,
                    rows: Sequence[tuple[int, dict[str, Any]]]) -> int:
    """Take the erased shoppers out of the lake; returns the rows changed or removed."""
    return lake.erase(pseudonymize(pseudonym_key, values["customer_id"]) for _, values in rows)
