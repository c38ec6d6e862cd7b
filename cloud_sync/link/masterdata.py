"""The downlink's master-data message: a compressed chunk of one file's records, with the
kind, a batch id, a version and the file's row numbers (so a store's error names the row).

A file too big for one message (IoT Core's 128 KB) is cut into chunks, each its own batch and
its own transaction at the store: versioned per record, a chunk applied twice changes
nothing, a chunk applied late never overwrites newer records.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from cloud_sync.link.batch import COMPRESSION_LEVEL, MAX_PAYLOAD_BYTES, inflate_json

FORMAT_VERSION = 1
MASTER_DATA_COMMAND = "masterdata"  # cmd/instore/{store}/masterdata
RESULTS_SUFFIX = "masterdata-results"  # dt/instore/{store}/masterdata-results
# Raw JSON per chunk before compression; halved until the payload fits.
MAX_RAW_BYTES_PER_CHUNK = 640 * 1024
PAYLOAD_HEADROOM = 1024


class MasterDataMessageError(ValueError):
    """A payload that is not a master-data message; the message says why."""


@dataclass(frozen=True)
class MasterDataMessage:
    kind: str
    batch_id: str
    version: int
    rows: list[tuple[int, dict[str, Any]]]  # (row number in the file, values)


def encode_chunks(kind: str, version: int, rows: Sequence[tuple[int, dict[str, Any]]],
                  batch_prefix: str) -> list[bytes]:
    """The file's records as payloads of at most IoT Core's size, in file order."""
    chunks: list[list[tuple[int, dict[str, Any]]]] = []
    start = 0
    while start < len(rows):
        raw, end = 0, start
        while end < len(rows) and (end == start or raw < MAX_RAW_BYTES_PER_CHUNK):
            raw += len(orjson.dumps(rows[end][1]))
            end += 1
        while True:
            chunk = list(rows[start:end])
            if len(_encode(kind, "x" * 80, version, chunk)) <= MAX_PAYLOAD_BYTES \
                    - PAYLOAD_HEADROOM or end - start == 1:
                break
            end = start + max(1, (end - start) // 2)
        chunks.append(chunk)
        start = end
    total = len(chunks)
    return [_encode(kind, f"{batch_prefix}-{index + 1:04d}of{total:04d}", version, chunk)
            for index, chunk in enumerate(chunks)]


def _encode(kind: str, batch_id: str, version: int,
            rows: Sequence[tuple[int, dict[str, Any]]]) -> bytes:
    body = orjson.dumps({"v": FORMAT_VERSION, "kind": kind, "batch_id": batch_id,
                         "version": version, "rows": [[row, values] for row, values in rows]})
    return zlib.compress(body, COMPRESSION_LEVEL)


def decode_message(payload: bytes) -> MasterDataMessage:
    try:
        message = inflate_json(payload)
    except ValueError as exc:
        raise MasterDataMessageError(str(exc)) from None
    if not isinstance(message, dict) or message.get("v") != FORMAT_VERSION:
        raise MasterDataMessageError(f"not a version {FORMAT_VERSION} message")
    kind, batch_id, version, rows = (message.get(k) for k in
                                     ("kind", "batch_id", "version", "rows"))
    if not isinstance(kind, str) or not isinstance(batch_id, str) or not batch_id:
        raise MasterDataMessageError("kind and batch_id are required")
    if not isinstance(version, int) or isinstance(version, bool) or version < 0:
        raise MasterDataMessageError("version must be a non-negative integer")
    if not isinstance(rows, list) or not all(
            isinstance(r, list) and len(r) == 2 and isinstance(r[0], int)
            and isinstance(r[1], dict) for r in rows):
        raise MasterDataMessageError("rows must be [row number, record] pairs")
    return MasterDataMessage(kind, batch_id, version, [(r[0], r[1]) for r in rows])
