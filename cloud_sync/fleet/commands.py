"""`cloud-sync master push`: the chain's master data to its stores.

    cloud-sync master push KIND FILE (--store ID ... | --all) --local DIR [--version N]
        [--wait SECONDS] [--pseudonym-key FILE]
"""

from __future__ import annotations

import argparse
import time
import uuid
from pathlib import Path
from typing import Any

from cloud_sync.fleet.masterdata import (
    RESULTS_FILTER,
    ResultCollector,
    all_stores,
    erase_from_lake,
    push,
    read_and_validate,
)
from cloud_sync.lake.store import Lake
from cloud_sync.link.mqtt import connect_mqtt5
from models.masterdata.records import KINDS


def add_master_group(subparsers: Any) -> None:
    group = subparsers.add_parser("master", help="the chain's master data to its stores")
    commands = group.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = commands.add_parser("push", help="validate a file and send it to stores")
    p.add_argument("kind", choices=sorted(KINDS))
    p.add_argument("file", type=Path, help="CSV or JSON lines (docs/master-data.md)")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--store", action="append", metavar="ID")
    which.add_argument("--all", action="store_true", help="every store in instore-stores")
    p.add_argument("--local", type=Path, metavar="DIR", required=True,
                   help="a running `cloud-sync local up --dir DIR`")
    p.add_argument("--version", type=int, help="default: now, in epoch seconds")
    p.add_argument("--wait", type=float, default=30.0, metavar="SECONDS",
                   help="wait this long for every store's result (0: don't)")
    p.add_argument("--pseudonym-key", type=Path, metavar="FILE",
                   help="the chain's pseudonym key: an erasure also clears the lake")
    p.set_defaults(handler=_push)


def _push(args: argparse.Namespace) -> int:
    from cloud_sync.local.broker import CLOUD_IDENTITY
    from cloud_sync.local.stack import LAKE_BUCKET, LocalCloud

    if args.kind == "erasure" and args.pseudonym_key is None:
        raise ValueError("an erasure needs --pseudonym-key FILE, to clear the lake too")
    rows = read_and_validate(args.kind, args.file)
    info = LocalCloud.attach(args.local)
    stores = all_stores(info.boto3_client("iot")) if args.all else args.store
    if not stores:
        raise ValueError("no stores to send to (none in instore-stores)")
    client_id = f"master-push-{uuid.uuid4().hex[:8]}"
    credentials = info.credentials(CLOUD_IDENTITY, args.local / "clients" / client_id)
    collector = ResultCollector()
    with connect_mqtt5(credentials, client_id, collector.on_publish) as link:
        if args.wait > 0:
            link.subscribe([RESULTS_FILTER])
        outcome = push(link, stores, args.kind, rows, version=args.version or int(time.time()),
                       source=args.file.read_bytes())
        print(f"sent {len(rows)} {args.kind} records as {len(outcome.batches)} message(s),"
              f" version {outcome.version}, to {len(stores)} store(s)")
        if args.kind == "erasure":
            lake = Lake(info.boto3_client("s3"), LAKE_BUCKET)
            changed = erase_from_lake(lake, args.pseudonym_key.read_bytes(), rows)
            print(f"lake: {changed} rows of the erased shoppers removed or made anonymous")
        if args.wait > 0:
            collector.wait(outcome, args.wait)
    for store in stores:
        for result in outcome.results.get(store, []):
            if result.get("batch_id") in outcome.batches:
                detail = (f"{result.get('applied')} applied, {result.get('stale')} stale"
                          if "applied" in result else result.get("reason")
                          or "; ".join(f"row {e['row']} {e['field']}: {e['message']}"
                                       for e in result.get("errors", [])))
                print(f"  {store}: {result['batch_id']} {result['status']} ({detail})")
    missing = outcome.missing() if args.wait > 0 else []
    if missing:
        print(f"no result yet from {', '.join(missing)}: offline stores get it when they"
              " reconnect")
    return 0
