"""`cloud-sync analyze ... --push`: a run's results to the stores, each store its own shoppers'.

The stores are those of the lake rows the run read; a store is sent the analyses of the
pseudonyms seen in its own sales among them (`downlink.push_insights` withholds the rest).
The link is the cloud's own MQTT identity, as for `cloud-sync master push`: the local
cloud's (`--local DIR`) or the credentials directory (`--credentials DIR`, link.json) for
AWS IoT Core. Pushing the same results again stores nothing new at a store.
"""

from __future__ import annotations

import argparse
import logging
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cloud_sync.analysis.downlink import InsightsPush, push_insights, shoppers_by_store
from cloud_sync.analysis.schema import AnalysisResult
from cloud_sync.link.credentials import LinkCredentials
from cloud_sync.link.mqtt import connect_mqtt5

logger = logging.getLogger(__name__)


def add_push_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--push", action="store_true",
                   help="send each store its shoppers' results (cmd/instore/STORE/insights)")
    p.add_argument("--credentials", type=Path, metavar="DIR",
                   help="the cloud's MQTT identity for IoT Core (link.json); with --push and"
                        " a lake other than --local")
    p.add_argument("--store", action="append", metavar="ID",
                   help="with --push: only these stores (default: every store in the lake)")


def cloud_link_credentials(args: argparse.Namespace, client_id: str) -> LinkCredentials:
    """The cloud's identity on the store link: the local cloud's, or the given directory."""
    if args.credentials is not None:
        return LinkCredentials.load(args.credentials)
    if args.local is None:
        raise ValueError("--push needs --credentials DIR (or a --local cloud)")
    from cloud_sync.local.broker import CLOUD_IDENTITY
    from cloud_sync.local.stack import LocalCloud

    return LocalCloud.attach(args.local).credentials(
        CLOUD_IDENTITY, args.local / "clients" / client_id)


def push_to_stores(credentials: LinkCredentials, rows: Any, results: Sequence[AnalysisResult],
                   *, stores: Sequence[str] | None = None, version: int | None = None,
                   client_id: str | None = None) -> list[InsightsPush]:
    """Publish each store's share of `results`; `rows` are the lake rows the run read."""
    seen = shoppers_by_store(rows)
    version = int(time.time()) if version is None else version
    client_id = client_id or f"insights-push-{uuid.uuid4().hex[:8]}"
    pushes = []
    with connect_mqtt5(credentials, client_id) as link:
        for store in stores or sorted(seen):
            pushes.append(push_insights(link, store, results,
                                        store_shoppers=seen.get(store, set()), version=version))
    return pushes


def push_from_args(args: argparse.Namespace, rows: Any, results: Sequence[AnalysisResult]
                   ) -> list[InsightsPush]:
    client_id = f"insights-push-{uuid.uuid4().hex[:8]}"
    pushes = push_to_stores(cloud_link_credentials(args, client_id), rows, results,
                            stores=args.store, client_id=client_id)
    for p in pushes:
        logger.info("insights to %s: %d sent in %d message(s), %d withheld", p.store, p.sent,
                    len(p.batches), p.withheld)
    return pushes


def push_summary(pushes: Sequence[InsightsPush]) -> dict[str, dict[str, int]]:
    """Per store: records sent, messages, results withheld (shoppers never seen there)."""
    return {p.store: {"sent": p.sent, "messages": len(p.batches), "withheld": p.withheld}
            for p in pushes}
