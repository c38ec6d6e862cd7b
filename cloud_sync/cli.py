"""`cloud-sync`: the cloud half's command line.

    cloud-sync local up [--dir DIR]                 the local stand-ins, until Ctrl-C
    cloud-sync fleet provision --store ID --out DIR --local DIR
    cloud-sync fleet provision --store ID --out DIR --region R --aws-issued --root-ca PEM
    cloud-sync lake worker|compact|count ...         (cloud_sync/lake/commands.py)
    cloud-sync master push KIND FILE --store ID ...  (cloud_sync/fleet/commands.py)
    cloud-sync release create|status|promote|watch|abort|rollback ...
                                                     (cloud_sync/release/commands.py)
    cloud-sync retrain --local DIR --key PEM --out DIR ...  (cloud_sync/retrain/commands.py)
    cloud-sync analyze shopper|fleet|score|ab ...    (cloud_sync/analysis/commands.py)

Command groups register in `COMMAND_GROUPS` (name, function adding the group's parser); a
leaf command sets `handler` (args -> exit code). Errors are one line on stderr, exit code 2.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from cloud_sync.analysis.commands import add_analyze_group
from cloud_sync.fleet.commands import add_master_group
from cloud_sync.lake.commands import add_lake_group
from cloud_sync.release.commands import add_release_group
from cloud_sync.retrain.commands import add_retrain_group

logger = logging.getLogger(__name__)

PROG = "cloud-sync"
DEFAULT_LOCAL_DIR = Path(".local-cloud")
CREDENTIALS_SETTING = "EDGE_CLOUD_CREDENTIALS"
IOT_MQTT_PORT = 8883
# How often `local up` checks that its processes are still alive.
WATCH_INTERVAL_S = 1.0

Subparsers = Any  # argparse._SubParsersAction is private; typed loosely on purpose
AddGroup = Callable[[Subparsers], None]


class CliError(Exception):
    """A user-facing failure: printed as one line, exit code 2."""


# ------------------------------------------------------------------------------- local
def _local_up(args: argparse.Namespace) -> int:
    from cloud_sync.local.stack import LocalCloud

    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    directory = Path(args.dir).resolve()
    cloud = LocalCloud(directory, region=args.region)
    try:
        cloud.up()
        info = cloud.info
        print(f"local cloud running in {directory}")
        print(f"  IoT Core stand-in (MQTT over TLS): {info.broker_host}:{info.broker_port}, "
              f"trust CA {info.ca_path}")
        print(f"  AWS APIs (moto): {info.moto_endpoint}, region {info.region}")
        print(f"provision stores with: {PROG} fleet provision --local {directory} "
              f"--store STORE --out {directory / 'stores'}")
        print("Ctrl-C to stop", flush=True)
        while not stop.wait(WATCH_INTERVAL_S):
            if not cloud.broker.running or not cloud.moto.running:
                which = "broker" if not cloud.broker.running else "moto server"
                print(f"{PROG}: the {which} exited; stopping (see {directory})",
                      file=sys.stderr)
                return 1
        print("stopping the local cloud")
        return 0
    finally:
        cloud.down()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def add_local_group(subparsers: Subparsers) -> None:
    group = subparsers.add_parser("local", help="local stand-ins for AWS IoT Core, S3, IoT")
    commands = group.add_subparsers(dest="local_command", required=True, metavar="COMMAND")
    up = commands.add_parser("up", help="start the local cloud and run until Ctrl-C")
    up.add_argument("--dir", type=Path, default=DEFAULT_LOCAL_DIR,
                    help=f"where its CA, broker and state live (default {DEFAULT_LOCAL_DIR})")
    up.add_argument("--region", default="eu-west-1")
    up.set_defaults(handler=_local_up)


# ------------------------------------------------------------------------------- fleet
def _endpoint(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep:
        return value, IOT_MQTT_PORT
    if not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, not {value!r}")
    return host, int(port)


def _provision(args: argparse.Namespace) -> int:
    from cloud_sync.fleet import provision as prov
    from cloud_sync.local.pki import LocalCA
    from cloud_sync.local.stack import LocalCloud

    for store in args.store:  # all ids checked before anything is created
        prov.validate_store_id(store)
    issuer: prov.CertificateIssuer
    if args.local:
        if args.aws_issued or args.own_ca:
            raise CliError("--local issues from the local CA; drop --aws-issued/--own-ca")
        info = LocalCloud.attach(args.local)
        iot = info.boto3_client("iot")
        host, port, region = info.broker_host, info.broker_port, info.region
        issuer = prov.OwnCACertificates(info.open_ca())
    else:
        if not args.region:
            raise CliError("--region is required without --local")
        if not args.root_ca:
            raise CliError("--root-ca PEM is required without --local (Amazon Root CA 1)")
        import boto3

        iot = boto3.client("iot", region_name=args.region)
        region = args.region
        if args.endpoint:
            host, port = args.endpoint
        else:
            host = iot.describe_endpoint(endpointType="iot:Data-ATS")["endpointAddress"]
            port = IOT_MQTT_PORT
        if args.own_ca:
            issuer = prov.OwnCACertificates(LocalCA.open_or_create(args.own_ca),
                                            server_ca=args.root_ca)
        else:
            issuer = prov.AwsIssuedCertificates(args.root_ca)
    # Only once the arguments are known good: a typo must not leave a new chain key behind.
    pseudonym_key = prov.load_or_create_pseudonym_key(args.out, args.pseudonym_key)
    for store in args.store:
        credentials = prov.provision_store(
            iot, store, args.out, endpoint_host=host, endpoint_port=port, issuer=issuer,
            region=region, account=args.account, pseudonym_key=pseudonym_key,
            thing_type=args.thing_type)
        directory = credentials.certificate.parent.resolve()
        print(f"store {store}: credentials in {directory} (endpoint {credentials.endpoint})")
        print(f"  for its edge agent: {CREDENTIALS_SETTING}={directory}")
    return 0


def add_fleet_group(subparsers: Subparsers) -> None:
    group = subparsers.add_parser("fleet", help="the stores as AWS IoT sees them")
    commands = group.add_subparsers(dest="fleet_command", required=True, metavar="COMMAND")
    p = commands.add_parser("provision", help="register stores and write their credentials")
    p.add_argument("--store", action="append", required=True, metavar="ID",
                   help="store id = thing name (repeat for several stores)")
    p.add_argument("--out", type=Path, required=True,
                   help="credentials root: one directory per store, plus pseudonym.key")
    p.add_argument("--pseudonym-key", type=Path, metavar="FILE",
                   help="the chain's 32-byte pseudonym key (default: OUT/pseudonym.key, "
                        "created once)")
    p.add_argument("--thing-type", help="IoT thing type for new things (optional)")
    p.add_argument("--account", help="AWS account id (default: from the thing's ARN)")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--local", type=Path, metavar="DIR",
                       help="a running `cloud-sync local up --dir DIR`")
    where.add_argument("--region", help="AWS region of the real IoT Core")
    p.add_argument("--endpoint", type=_endpoint, metavar="HOST:PORT",
                   help="IoT data endpoint (default: describe_endpoint, port 8883)")
    how = p.add_mutually_exclusive_group()
    how.add_argument("--aws-issued", action="store_true",
                     help="IoT creates keys and certificates (the default with --region)")
    how.add_argument("--own-ca", type=Path, metavar="DIR",
                     help="sign with the chain's own CA kept in DIR (ca.pem, ca.key)")
    p.add_argument("--root-ca", type=Path, metavar="PEM",
                   help="CA the stores trust for the endpoint (AmazonRootCA1.pem)")
    p.set_defaults(handler=_provision)


# -------------------------------------------------------------------------------- main
COMMAND_GROUPS: list[tuple[str, AddGroup]] = [
    ("local", add_local_group),
    ("fleet", add_fleet_group),
    ("lake", add_lake_group),
    ("master", add_master_group),
    ("release", add_release_group),
    ("retrain", add_retrain_group),
    ("analyze", add_analyze_group),
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    parser.add_argument("--log-level", default="WARNING",
                        choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    subparsers = parser.add_subparsers(dest="group", required=True, metavar="GROUP")
    for _name, add_group in COMMAND_GROUPS:
        add_group(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # argparse printed usage and the error (or --help)
        return int(exc.code or 0)
    logging.basicConfig(level=args.log_level,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return int(args.handler(args))
    except (CliError, ValueError, RuntimeError, OSError, ClientError, BotoCoreError) as exc:
        print(f"{PROG}: {_one_line(exc)}", file=sys.stderr)
        return 2


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


if __name__ == "__main__":
    sys.exit(main())
