"""Analyses back to the store: each store's shoppers' results, cut into messages of at most
IoT Core's 128 KB and published at QoS 1 on `cmd/instore/{store}/insights`; the store
reports each message's outcome on `dt/instore/{store}/insights-results`.

The message is the master-data downlink's envelope (`cloud_sync.link.masterdata`: kind,
batch id, version, numbered records, zlib) with kind `insights`; each record is an
`InsightRecord`, the one model the cloud builds records with and the store validates them
against. A record names its shopper only by pseudonym, and a store is sent only the
pseudonyms seen in its own sales: it can map those back to its customers (it holds the
pseudonym key), and learns nothing about other stores' shoppers.

Idempotent: a record's `analysis_id` is derived from the analysis itself, so pushing the same
results again (a retry, a re-run) stores nothing new at the store.

Store-safe: this module is imported by the agent, so it needs nothing beyond the store's
install (no boto3, no pyarrow); the lake is passed in.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import orjson
from pydantic import BaseModel, ConfigDict, Field

from cloud_sync.analysis.schema import (
    AnalysisResult,
    FallbackReason,
    Producer,
    ShopperAnalysis,
)
from cloud_sync.link.masterdata import encode_chunks
from cloud_sync.link.privacy import PSEUDONYM_HEX_CHARS
from cloud_sync.topics import command_topic

if TYPE_CHECKING:
    from cloud_sync.lake.store import Lake
    from cloud_sync.link.mqtt import LinkClient

logger = logging.getLogger(__name__)

INSIGHTS_COMMAND = "insights"  # cmd/instore/{store}/insights
INSIGHTS_RESULTS_SUFFIX = "insights-results"  # dt/instore/{store}/insights-results
INSIGHTS_RESULTS_FILTER = f"dt/instore/+/{INSIGHTS_RESULTS_SUFFIX}"
INSIGHTS_KIND = "insights"
# The smallest record (no forecasts, no inferences) is about 300 bytes of JSON, and a chunk
# holds at most 640 KB of it (cloud_sync.link.masterdata): a message never carries more than
# ~2,200 records. The store refuses more than this as not ours.
MAX_RECORDS_PER_MESSAGE = 10_000
MODEL_ID_MAX = 200
ANALYSIS_ID_HEX_CHARS = 32

Pseudonym = Annotated[str, Field(pattern=rf"^[0-9a-f]{{{PSEUDONYM_HEX_CHARS}}}$")]


class InsightRecord(BaseModel):
    """One analysis as it travels to a store (no cost, no operator detail: staff need
    neither)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    shopper: Pseudonym
    analysis_id: Annotated[str, Field(pattern=rf"^[0-9a-f]{{{ANALYSIS_ID_HEX_CHARS}}}$")]
    producer: Producer
    model_id: Annotated[str, Field(min_length=1, max_length=MODEL_ID_MAX)] | None = None
    fallback_reason: FallbackReason | None = None
    created_at: datetime
    analysis: ShopperAnalysis


@dataclass(frozen=True)
class InsightsPush:
    store: str
    version: int
    batches: list[str]  # batch ids, in order
    sent: int  # records sent
    withheld: int  # results for shoppers not seen in this store: not sent


def analysis_id(result: AnalysisResult) -> str:
    """The same analysis gives the same id, whenever and however often it is pushed."""
    key = "\0".join([result.shopper_id, result.created_at.isoformat(), result.summary_digest,
                     result.producer, result.model_id or ""])
    return hashlib.sha256(key.encode()).hexdigest()[:ANALYSIS_ID_HEX_CHARS]


def insight_record(result: AnalysisResult) -> InsightRecord:
    return InsightRecord(shopper=result.shopper_id, analysis_id=analysis_id(result),
                         producer=result.producer, model_id=result.model_id,
                         fallback_reason=result.fallback_reason,
                         created_at=result.created_at, analysis=result.analysis)


def shoppers_of_store(lake: Lake, store: str) -> set[str]:
    """The pseudonyms seen in a store's events in the lake: the only ones it may be sent."""
    return shoppers_by_store(lake.read(store_id=store)).get(store, set())


def shoppers_by_store(rows: Any) -> dict[str, set[str]]:
    """Per store, the pseudonyms seen in its events among lake `rows` (a table, or dicts)."""
    if hasattr(rows, "column"):  # a pyarrow table, as the lake reads it
        pairs = zip(rows.column("store_id").to_pylist(), rows.column("customer_id").to_pylist(),
                    strict=True)
    else:
        pairs = ((row.get("store_id"), row.get("customer_id")) for row in rows)
    seen: dict[str, set[str]] = {}
    for store, pseudonym in pairs:
        if store and pseudonym:
            seen.setdefault(store, set()).add(pseudonym)
    return seen


def encode_insights(records: Sequence[InsightRecord], version: int) -> tuple[list[str],
                                                                             list[bytes]]:
    """Batch ids and payloads (each under IoT Core's limit) for these records."""
    rows = [(index + 1, record.model_dump(mode="json")) for index, record in enumerate(records)]
    digest = hashlib.sha256(orjson.dumps([r[1]["analysis_id"] for r in rows])).hexdigest()[:12]
    prefix = f"{INSIGHTS_KIND}-{version}-{digest}"
    payloads = encode_chunks(INSIGHTS_KIND, version, rows, prefix)
    batches = [f"{prefix}-{i + 1:04d}of{len(payloads):04d}" for i in range(len(payloads))]
    return batches, payloads


def push_insights(link: LinkClient, store: str, results: Iterable[AnalysisResult], *,
                  store_shoppers: set[str], version: int | None = None) -> InsightsPush:
    """Publish one store's results (those of shoppers in `store_shoppers`, the others are
    withheld and counted); raises if the broker refuses a message."""
    records, withheld = [], 0
    for result in results:
        if result.shopper_id in store_shoppers:
            records.append(insight_record(result))
        else:
            withheld += 1
    if withheld:
        logger.info("withheld %d analyses of shoppers never seen in %s", withheld, store)
    version = int(time.time()) if version is None else version
    batches, payloads = encode_insights(records, version) if records else ([], [])
    from cloud_sync.link.mqtt import publish_all  # awscrt: only where something is sent

    publish_all(link, command_topic(store, INSIGHTS_COMMAND), payloads, f"insights for {store}")
    return InsightsPush(store, version, batches, len(records), withheld)

