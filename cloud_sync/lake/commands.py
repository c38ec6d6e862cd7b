"""`cloud-sync lake ...`: run a lake worker, compact partitions, count what the lake holds.

    cloud-sync lake worker --local DIR [--client-id ID]
    cloud-sync lake worker --credentials DIR --bucket B [--region R] [--client-id ID]
    cloud-sync lake worker          (in a container: everything from CLOUD_SYNC_* variables)
    cloud-sync lake compact (--local DIR | --bucket B) [--day YYYY-MM-DD] [--store ID]
    cloud-sync lake count (--local DIR | --bucket B) [--store ID]
"""

from __future__ import annotations

import argparse
import os
import signal
import tempfile
import threading
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Any

import boto3
import pyarrow.compute as pc

from cloud_sync.lake.store import Lake
from cloud_sync.lake.worker import LakeWorker
from cloud_sync.link.credentials import LinkCredentials

DEFAULT_CLIENT_ID = "lake-1"
# A container's settings (cloud_sync/infrastructure/instore-cloud.yaml): the certificate and
# key come from a secret as PEM text, not as files.
ENV_BUCKET = "CLOUD_SYNC_LAKE_BUCKET"
ENV_ENDPOINT = "CLOUD_SYNC_IOT_ENDPOINT"
ENV_CA_FILE = "CLOUD_SYNC_IOT_CA_FILE"
ENV_CERT_PEM = "CLOUD_SYNC_IOT_CERT_PEM"
ENV_KEY_PEM = "CLOUD_SYNC_IOT_KEY_PEM"
ENV_CLIENT_ID_PREFIX = "CLOUD_SYNC_IOT_CLIENT_ID_PREFIX"
IOT_MQTT_PORT = 8883


def add_lake_group(subparsers: Any) -> None:
    group = subparsers.add_parser("lake", help="the S3 lake of every store's events")
    commands = group.add_subparsers(dest="command", required=True, metavar="COMMAND")

    worker = commands.add_parser("worker", help="write uplinked batches to the lake until"
                                                " stopped (SIGTERM, Ctrl-C)")
    _where(worker)
    worker.add_argument("--credentials", type=Path, metavar="DIR",
                        help="the worker's MQTT credentials (link.json); with --bucket")
    worker.add_argument("--client-id", help="stable per worker: its unacknowledged batches"
                        f" wait under it (default {DEFAULT_CLIENT_ID}, or"
                        f" ${ENV_CLIENT_ID_PREFIX} + the host name)")
    worker.set_defaults(handler=_worker)

    compact = commands.add_parser("compact", help="rewrite partitions, each event once"
                                                  " (default: yesterday's, UTC)")
    _where(compact)
    compact.add_argument("--day", type=date.fromisoformat, metavar="YYYY-MM-DD")
    compact.add_argument("--all", action="store_true", help="every partition")
    compact.add_argument("--store")
    compact.set_defaults(handler=_compact)

    count = commands.add_parser("count", help="events in the lake by store and day")
    _where(count)
    count.add_argument("--store")
    count.set_defaults(handler=_count)


def _where(parser: argparse.ArgumentParser) -> None:
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--local", type=Path, metavar="DIR",
                       help="a running `cloud-sync local up --dir DIR`")
    where.add_argument("--bucket", default=os.environ.get(ENV_BUCKET),
                       help=f"the lake bucket (default ${ENV_BUCKET}; AWS credentials from the"
                            " environment)")
    parser.add_argument("--region")


def open_lake(args: argparse.Namespace) -> Lake:
    from cloud_sync.local.stack import LAKE_BUCKET, LocalCloud

    if args.local is not None:
        return Lake(LocalCloud.attach(args.local).boto3_client("s3"), LAKE_BUCKET)
    if not args.bucket:
        raise ValueError(f"give --local DIR, or --bucket NAME (or ${ENV_BUCKET})")
    return Lake(boto3.client("s3", region_name=args.region), args.bucket)


def _worker(args: argparse.Namespace) -> int:
    from cloud_sync.local.broker import CLOUD_IDENTITY
    from cloud_sync.local.stack import LocalCloud

    prefix = os.environ.get(ENV_CLIENT_ID_PREFIX)
    client_id = args.client_id or (prefix + os.uname().nodename if prefix else DEFAULT_CLIENT_ID)
    args.client_id = client_id
    if args.local is not None:
        info = LocalCloud.attach(args.local)
        credentials = info.credentials(CLOUD_IDENTITY, args.local / "lake-workers" / client_id)
    elif args.credentials is not None:
        credentials = LinkCredentials.load(args.credentials)
    else:
        credentials = credentials_from_environment(client_id)
    stop = threading.Event()

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, on_signal)
    worker = LakeWorker(credentials, open_lake(args), args.client_id)
    worker.start()
    print(f"lake worker {args.client_id} writing to s3://{worker.bucket}", flush=True)
    try:
        stop.wait()
    finally:
        worker.stop()
    print(f"lake worker {args.client_id}: {worker.stats.batches} batches,"
          f" {worker.stats.events} events, {worker.stats.dead_letters} dead letters")
    return 0


def credentials_from_environment(client_id: str) -> LinkCredentials:
    """A container's worker identity: PEM text from a secret, written to a private
    temporary directory for the TLS library, which reads files."""
    missing = [name for name in (ENV_ENDPOINT, ENV_CA_FILE, ENV_CERT_PEM, ENV_KEY_PEM)
               if not os.environ.get(name)]
    if missing:
        raise ValueError("no --local or --credentials, and not set: " + ", ".join(missing))
    host, _, port = os.environ[ENV_ENDPOINT].partition(":")
    directory = Path(tempfile.mkdtemp(prefix="lake-worker-"))
    (directory / "certificate.pem").write_text(os.environ[ENV_CERT_PEM])
    key = directory / "private.key"
    key.touch(mode=0o600)
    key.write_text(os.environ[ENV_KEY_PEM])
    return LinkCredentials(thing_name=client_id, host=host, port=int(port or IOT_MQTT_PORT),
                           certificate=directory / "certificate.pem", private_key=key,
                           ca=Path(os.environ[ENV_CA_FILE]))


def _compact(args: argparse.Namespace) -> int:
    lake = open_lake(args)
    day = None if args.all else (args.day or datetime.now(UTC).date() - timedelta(days=1))
    for partition in lake.partitions(day=day, store_id=args.store):
        result = lake.compact(partition)
        print(f"{partition.prefix}: {result.objects_before} objects, {result.rows_before}"
              f" rows -> {result.rows_after} events")
    return 0


def _count(args: argparse.Namespace) -> int:
    table = open_lake(args).read(store_id=args.store)
    if table.num_rows == 0:
        print("the lake is empty")
        return 0
    days = pc.strftime(table["ts"], format="%Y-%m-%d")
    grouped = (table.select(["store_id"]).append_column("day", days)
               .group_by(["store_id", "day"]).aggregate([([], "count_all")])
               .sort_by([("store_id", "ascending"), ("day", "ascending")]))
    for row in grouped.to_pylist():
        print(f"{row['store_id']}  {row['day']}  {row['count_all']} events")
    print(f"total: {table.num_rows} events")
    return 0
