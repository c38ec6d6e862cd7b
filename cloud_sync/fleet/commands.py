"""`cloud-sync master push`: the chain's master data to its stores, from a file or S3.

    cloud-sync master push KIND FILE|s3://BUCKET/KEY (--store ID ... | --all)
        (--local DIR | --credentials DIR [--region R] [--bucket LAKE])
        [--version N] [--wait SECONDS] [--pseudonym-key FILE]

With `--credentials DIR` (the cloud's own MQTT identity, `link.json` as the lake workers'),
it talks to IoT Core and AWS with the environment's AWS credentials.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from pathlib import Path, PurePosixPath
from typing import Any

import boto3

from cloud_sync.fleet.masterdata import (
    RESULTS_FILTER,
    ResultCollector,
    all_stores,
    erase_from_lake,
    push,
    read_and_validate,
)
from cloud_sync.lake.store import Lake
from cloud_sync.link.credentials import LinkCredentials
from cloud_sync.link.mqtt import connect_mqtt5
from models.masterdata.records import KINDS


def add_master_group(subparsers: Any) -> None:
    group = subparsers.add_parser("master", help="the chain's master data to its stores")
    commands = group.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = commands.add_parser("push", help="validate a file and send it to stores")
    p.add_argument("kind", choices=sorted(KINDS))
    p.add_argument("file", help="CSV or JSON lines (docs/master-data.md), a path or"
                                " s3://BUCKET/KEY")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--store", action="append", metavar="ID")
    which.add_argument("--all", action="store_true", help="every store in instore-stores")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--local", type=Path, metavar="DIR",
                       help="a running `cloud-sync local up --dir DIR`")
    where.add_argument("--credentials", type=Path, metavar="DIR",
                       help="the cloud's MQTT identity for IoT Core (link.json)")
    p.add_argument("--region", help="AWS region (with --credentials)")
    p.add_argument("--bucket", help="the lake bucket, for an erasure (with --credentials)")
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
    client_id = f"master-push-{uuid.uuid4().hex[:8]}"
    if args.local is not None:
        info = LocalCloud.attach(args.local)
        aws = info.boto3_client
        lake_bucket = LAKE_BUCKET
        credentials = info.credentials(CLOUD_IDENTITY, args.local / "clients" / client_id)
    else:
        def aws(service: str) -> Any:
            return boto3.client(service, region_name=args.region)
        lake_bucket = args.bucket
        credentials = LinkCredentials.load(args.credentials)
        if args.kind == "erasure" and not lake_bucket:
            raise ValueError("an erasure needs --bucket LAKE, to clear the lake too")
    source = fetch_source(args.file, aws)
    rows = read_and_validate(args.kind, source)
    stores = all_stores(aws("iot")) if args.all else args.store
    if not stores:
        raise ValueError("no stores to send to (none in instore-stores)")
    collector = ResultCollector()
    with connect_mqtt5(credentials, client_id, collector.on_publish) as link:
        if args.wait > 0:
            link.subscribe([RESULTS_FILTER])
        outcome = push(link, stores, args.kind, rows, version=args.version or int(time.time()),
                       source=source.read_bytes())
        print(f"sent {len(rows)} {args.kind} records as {len(outcome.batches)} message(s),"
              f" version {outcome.version}, to {len(stores)} store(s)")
        if args.kind == "erasure":
            lake = Lake(aws("s3"), lake_bucket)
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


def fetch_source(location: str, aws: Any) -> Path:
    """The file to push: a local path, or an S3 object downloaded to a temporary file with
    the key's suffix (it says CSV or JSON lines)."""
    if not location.startswith("s3://"):
        return Path(location)
    bucket, _, key = location.removeprefix("s3://").partition("/")
    if not bucket or not key:
        raise ValueError(f"{location}: expected s3://BUCKET/KEY")
    target = Path(tempfile.mkdtemp(prefix="master-push-")) / PurePosixPath(key).name
    aws("s3").download_file(bucket, key, str(target))
    return target
