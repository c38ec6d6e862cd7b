"""The lake's layout in S3, and reading, compacting and erasing it.

    events/dt=YYYY-MM-DD/store=ID/part-{batch_id}.parquet     one per batch and day, by workers
    events/dt=YYYY-MM-DD/store=ID/compacted-{digest}.parquet  one per partition, by `compact`
    dead-letters/dt=YYYY-MM-DD/{digest}.json                  batches no worker could read
    erasures/{digest}.json                                     pseudonyms erased, re-applied

`dt=` first: a daily job (analysis, retraining) reads one prefix for the whole fleet, and a
thousand stores make a thousand partitions a day, each compacted to one object. The key of a
batch's object comes from its batch id, so a batch delivered twice (a worker killed before
its acknowledgement, a store resending after a crash) overwrites the same object. What
could still be doubled — a store that cut a batch differently — is removed by compaction, and
every read drops duplicate `event_id`s anyway: exactly once per event after compaction,
never more than once as read.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from cloud_sync.lake.schema import EVENT_SCHEMA, events_table, parse_ts
from cloud_sync.link.batch import Batch

logger = logging.getLogger(__name__)

EVENTS_PREFIX = "events/"
DEAD_LETTERS_PREFIX = "dead-letters/"
# Every erasure is recorded, so compaction takes the shopper out again of any batch that was
# still on its way when the erasure ran.
ERASURES_PREFIX = "erasures/"
PERSONAL_ONLY_TYPES = ("presence", "interaction")  # meaningless without the shopper


@dataclass(frozen=True)
class Partition:
    day: date
    store_id: str

    @property
    def prefix(self) -> str:
        return f"{EVENTS_PREFIX}dt={self.day.isoformat()}/store={self.store_id}/"


@dataclass(frozen=True)
class CompactResult:
    partition: Partition
    objects_before: int
    rows_before: int
    rows_after: int


class Lake:
    def __init__(self, s3: Any, bucket: str) -> None:
        self._s3 = s3
        self.bucket = bucket

    # -- writing -------------------------------------------------------------------------------

    def write_batch(self, batch: Batch) -> list[str]:
        """One object per day the batch's events fall on; returns their keys."""
        by_day: dict[date, list[dict[str, Any]]] = defaultdict(list)
        for event in batch.events:
            by_day[parse_ts(event["ts"]).date()].append(event)
        keys = []
        for day, events in sorted(by_day.items()):
            table = events_table(batch.store_id, batch.batch_id, events)
            key = f"{Partition(day, batch.store_id).prefix}part-{batch.batch_id}.parquet"
            self._put_table(key, table)
            keys.append(key)
        return keys

    def put_dead_letter(self, payload: bytes, reason: str, topic: str, day: date) -> str:
        digest = hashlib.sha256(payload).hexdigest()[:32]
        key = f"{DEAD_LETTERS_PREFIX}dt={day.isoformat()}/{digest}.json"
        body = {"topic": topic, "reason": reason, "bytes": len(payload),
                "payload_hex": payload[:4096].hex()}
        self._s3.put_object(Bucket=self.bucket, Key=key, Body=json.dumps(body).encode())
        return key

    # -- reading -------------------------------------------------------------------------------

    def partitions(self, *, day: date | None = None, store_id: str | None = None
                   ) -> list[Partition]:
        prefix = EVENTS_PREFIX + (f"dt={day.isoformat()}/" if day else "")
        found = set()
        for key in self._keys(prefix):
            dt_part, store_part = key[len(EVENTS_PREFIX):].split("/")[:2]
            partition = Partition(date.fromisoformat(dt_part.removeprefix("dt=")),
                                  store_part.removeprefix("store="))
            if store_id is None or partition.store_id == store_id:
                found.add(partition)
        return sorted(found, key=lambda p: (p.day, p.store_id))

    def read(self, *, store_id: str | None = None, since: date | None = None,
             until: date | None = None) -> pa.Table:
        """Every event of the matching partitions, each `event_id` once."""
        tables = []
        for partition in self.partitions(store_id=store_id):
            if (since and partition.day < since) or (until and partition.day > until):
                continue
            tables.extend(self._get_table(key) for key in self._keys(partition.prefix))
        if not tables:
            return EVENT_SCHEMA.empty_table()
        return _first_of_each_event(pa.concat_tables(tables))

    # -- maintenance ---------------------------------------------------------------------------

    def compact(self, partition: Partition) -> CompactResult:
        """Rewrite a partition as one object, each event once. The new object is written
        before the old ones are deleted, and readers drop duplicates, so an interrupted
        compaction neither loses nor doubles an event; objects written meanwhile stay."""
        keys = self._keys(partition.prefix)
        tables = [self._get_table(key) for key in keys]
        if not tables:
            return CompactResult(partition, 0, 0, 0)
        merged = pa.concat_tables(tables)
        unique = _first_of_each_event(merged).sort_by([("ts", "ascending"),
                                                       ("event_id", "ascending")])
        unique, _ = _without_shoppers(unique, self.erased_pseudonyms())
        digest = hashlib.sha256("\n".join(sorted(keys)).encode()).hexdigest()[:16]
        new_key = f"{partition.prefix}compacted-{digest}.parquet"
        if keys != [new_key]:
            self._put_table(new_key, unique)
            self._delete([key for key in keys if key != new_key])
        return CompactResult(partition, len(keys), merged.num_rows, unique.num_rows)

    def erase(self, pseudonyms: Iterable[str]) -> int:
        """Take shoppers out of every object: their presence and interactions go, their sales
        stay as anonymous baskets (as at the edge). The erasure is recorded first, so
        compaction applies it again to anything that arrives later. Returns the rows changed
        or removed."""
        targets = sorted(set(pseudonyms))
        if not targets:
            return 0
        body = json.dumps({"pseudonyms": targets}).encode()
        key = f"{ERASURES_PREFIX}{hashlib.sha256(body).hexdigest()[:32]}.json"
        self._s3.put_object(Bucket=self.bucket, Key=key, Body=body)
        changed = 0
        for key in self._keys(EVENTS_PREFIX):
            kept, hits = _without_shoppers(self._get_table(key), targets)
            if hits:
                self._put_table(key, kept)
                changed += hits
        return changed

    def erased_pseudonyms(self) -> set[str]:
        erased: set[str] = set()
        for page in self._s3.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=ERASURES_PREFIX):
            for item in page.get("Contents", ()):
                body = self._s3.get_object(Bucket=self.bucket, Key=item["Key"])["Body"].read()
                erased.update(json.loads(body)["pseudonyms"])
        return erased

    # -- S3 ------------------------------------------------------------------------------------

    def _keys(self, prefix: str) -> list[str]:
        keys = []
        for page in self._s3.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=prefix):
            keys.extend(item["Key"] for item in page.get("Contents", ())
                        if item["Key"].endswith(".parquet"))
        return sorted(keys)

    def _put_table(self, key: str, table: pa.Table) -> None:
        buffer = io.BytesIO()
        pq.write_table(table, buffer, compression="zstd")
        self._s3.put_object(Bucket=self.bucket, Key=key, Body=buffer.getvalue())

    def _get_table(self, key: str) -> pa.Table:
        body = self._s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        return pq.read_table(io.BytesIO(body), schema=EVENT_SCHEMA)

    def _delete(self, keys: Sequence[str]) -> None:
        for start in range(0, len(keys), 1000):  # DeleteObjects takes 1,000 keys at most
            chunk = keys[start:start + 1000]
            self._s3.delete_objects(Bucket=self.bucket, Delete={
                "Objects": [{"Key": key} for key in chunk], "Quiet": True})


def _without_shoppers(table: pa.Table, pseudonyms: Iterable[str]) -> tuple[pa.Table, int]:
    """The table without these shoppers' presence and interactions, their sales anonymous;
    and how many rows were theirs."""
    targets = pa.array(sorted(set(pseudonyms)), pa.string())
    if len(targets) == 0 or table.num_rows == 0:
        return table, 0
    theirs = pc.fill_null(pc.is_in(table["customer_id"], value_set=targets), False)
    hits = pc.sum(theirs).as_py() or 0
    if not hits:
        return table, 0
    personal_only = pc.is_in(table["type"], value_set=pa.array(PERSONAL_ONLY_TYPES))
    kept = table.filter(pc.invert(pc.and_(theirs, personal_only)))
    still = pc.fill_null(pc.is_in(kept["customer_id"], value_set=targets), False)
    customer = pc.if_else(still, pa.scalar(None, pa.string()), kept["customer_id"])
    return kept.set_column(kept.schema.get_field_index("customer_id"), "customer_id",
                           customer), hits


def _first_of_each_event(table: pa.Table) -> pa.Table:
    if table.num_rows == 0:
        return table
    positions = pa.array(range(table.num_rows), pa.int64())
    first = (pa.table({"event_id": table["event_id"], "position": positions})
             .group_by("event_id", use_threads=False)
             .aggregate([("position", "min")]))
    return table.take(pc.sort_indices(first["position_min"]))
