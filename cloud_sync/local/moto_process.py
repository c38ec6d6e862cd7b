"""The moto process of the local cloud: moto's server (real HTTP, as `python -m moto.server`)
and, given the broker credentials of the `iot-jobs` identity, the device side of IoT Jobs
(`cloud_sync.local.jobs`) in the same process, so it reads and updates moto's job records.

    python -m cloud_sync.local.moto_process -H 127.0.0.1 -p 5000 \\
        [--jobs-credentials DIR --region eu-west-1 --jobs-seconds-per-minute 60]
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import boto3
from botocore.config import Config

from cloud_sync.link.credentials import LinkCredentials

if TYPE_CHECKING:
    from cloud_sync.local.jobs.service import JobsDeviceService

logger = logging.getLogger(__name__)

DEFAULT_SECONDS_PER_MINUTE = 60.0
# moto accepts any credentials; the presigned URLs only need them to be there.
DUMMY_KEY = "testing"


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="cloud_sync.local.moto_process")
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, required=True)
    parser.add_argument("--region", default="eu-west-1")
    parser.add_argument("--jobs-credentials", type=Path, default=None,
                        help="broker credentials directory (link.json) of the jobs service; "
                             "without it, moto alone")
    parser.add_argument("--jobs-seconds-per-minute", type=float,
                        default=DEFAULT_SECONDS_PER_MINUTE,
                        help="local only: how long a job 'minute' lasts (rollout rates, "
                             "timeouts); tests shrink it")
    return parser.parse_args(argv)


def start_jobs_service(credentials_dir: Path, endpoint_url: str, region: str,
                       seconds_per_minute: float) -> JobsDeviceService:
    """The jobs device service on moto's in-process IoT backend; returns it once subscribed."""
    # Imported here: moto's models load only in this process, after the arguments are read.
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.iot.models import iot_backends

    from cloud_sync.local.jobs.documents import JobDocuments
    from cloud_sync.local.jobs.executions import ExecutionLedger
    from cloud_sync.local.jobs.lifecycle import JobLifecycle
    from cloud_sync.local.jobs.service import JobsDeviceService

    s3 = boto3.session.Session().client(
        "s3", endpoint_url=endpoint_url, region_name=region, aws_access_key_id=DUMMY_KEY,
        aws_secret_access_key=DUMMY_KEY,
        # Path style: a URL on 127.0.0.1 that urllib can fetch without DNS for the bucket.
        config=Config(s3={"addressing_style": "path"}, signature_version="s3v4"))
    lifecycle = JobLifecycle(lambda: iot_backends[DEFAULT_ACCOUNT_ID][region],
                             seconds_per_minute)
    ledger = ExecutionLedger(lifecycle, JobDocuments(s3))
    return JobsDeviceService(LinkCredentials.load(credentials_dir), ledger).start()


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.jobs_credentials is not None:
        start_jobs_service(args.jobs_credentials, f"http://{args.host}:{args.port}",
                           args.region, args.jobs_seconds_per_minute)
    from moto import server  # serves until SIGTERM/SIGINT (its handlers exit the process)

    server.main(["-H", args.host, "-p", str(args.port)])
    return 0


if __name__ == "__main__":
    sys.exit(main())
