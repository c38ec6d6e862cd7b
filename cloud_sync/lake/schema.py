"""One Parquet schema for every event: the envelope, then the union of the event types'
fields (null where a type has none). A fixed schema keeps every object of the lake readable
together (Athena, Glue, pyarrow datasets) however a store's traffic mixes."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import pyarrow as pa

from cloud_sync.link.privacy import ITEM_FIELDS, UPLINK_FIELDS

ITEM_TYPE = pa.struct([("product_id", pa.string()), ("quantity", pa.float64()),
                       ("unit_price", pa.float64()), ("discount", pa.float64())])
EVENT_SCHEMA = pa.schema([
    ("event_id", pa.string()),
    ("store_id", pa.string()),
    ("type", pa.string()),
    ("ts", pa.timestamp("us", tz="UTC")),
    ("device_id", pa.string()),
    ("batch_id", pa.string()),
    # The payload's fields.
    ("transaction_id", pa.string()),
    ("customer_id", pa.string()),  # a pseudonym, or null for a shopper without consent
    ("items", pa.list_(ITEM_TYPE)),
    ("total", pa.float64()),
    ("product_id", pa.string()),
    ("quantity", pa.float64()),
    ("weight_g", pa.float64()),
    ("capacity", pa.int64()),
    ("zone_id", pa.string()),
    ("people", pa.int64()),
    ("avg_dwell_s", pa.float64()),
    ("action", pa.string()),
    ("context", pa.string()),
    ("model_version", pa.string()),
])
PAYLOAD_COLUMNS = [name for name in EVENT_SCHEMA.names
                   if name not in ("event_id", "store_id", "type", "ts", "device_id", "batch_id")]
assert {f for fields in UPLINK_FIELDS.values() for f in fields} <= set(PAYLOAD_COLUMNS)
assert set(ITEM_FIELDS) == {f.name for f in ITEM_TYPE}


def parse_ts(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def events_table(store_id: str, batch_id: str, events: Sequence[dict[str, Any]]) -> pa.Table:
    """Rows of the lake from one decoded batch; a field of the wrong type raises
    pyarrow's ArrowInvalid/ArrowTypeError (the worker dead-letters the batch)."""
    columns: dict[str, list[Any]] = {name: [] for name in EVENT_SCHEMA.names}
    for event in events:
        columns["event_id"].append(event["event_id"])
        columns["store_id"].append(store_id)
        columns["type"].append(event["type"])
        columns["ts"].append(parse_ts(event["ts"]))
        columns["device_id"].append(event.get("device_id"))
        columns["batch_id"].append(batch_id)
        for name in PAYLOAD_COLUMNS:
            columns[name].append(event.get(name))
    return pa.Table.from_pydict(columns, schema=EVENT_SCHEMA)
