"""``cloud-sync release ...``: create a release and drive its staged rollout.

    cloud-sync release create (--bundle B.tar.gz (--public-key PEM | --kms-key-id ID)
                               | --models DIR --version V --kms-key-id ID [--out B.tar.gz])
        [--canary STORE ...] [--waves 10,50,100] [--soak-s N] [--probation-s N]
        [--max-error-rate F] [--max-p99-ms F] [--min-requests N] [--min-evidence-share F]
        [--max-ctr-drop F] [--min-impressions N] [--wave-deadline-s N]
        [--min-reported-share F] WHERE
    cloud-sync release status|promote|watch|abort|rollback [VERSION] WHERE
    WHERE: --local DIR | --region R --bucket B --role-arn ARN
"""

from __future__ import annotations

import argparse
import contextlib
import json
import tempfile
from pathlib import Path
from typing import Any

from cloud_sync.release.controller import WATCH_INTERVAL_S, ReleaseController
from cloud_sync.release.create import create_release
from cloud_sync.release.decide import Decision
from cloud_sync.release.spec import (
    DEFAULT_MAX_CTR_DROP,
    DEFAULT_MAX_ERROR_RATE,
    DEFAULT_MAX_P99_MS,
    DEFAULT_MIN_EVIDENCE_SHARE,
    DEFAULT_MIN_IMPRESSIONS,
    DEFAULT_MIN_REPORTED_SHARE,
    DEFAULT_MIN_REQUESTS,
    DEFAULT_PROBATION_S,
    DEFAULT_SOAK_S,
    DEFAULT_WAVE_DEADLINE_S,
    DEFAULT_WAVES,
    RolloutSpec,
)
from models.bundle import BundleError

# Locally: the releases bucket in moto, and a role ARN moto accepts for presigning (the
# local IoT Jobs stand-in presigns with its own S3 client).
LOCAL_RELEASES_BUCKET = "instore-releases"
LOCAL_ROLE_ARN = "arn:aws:iam::123456789012:role/instore-release-presign"


def _waves(value: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in value.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected percentages like 10,50,100, not {value!r}"
                                         ) from None


def _where(p: argparse.ArgumentParser) -> None:
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--local", metavar="DIR", help="a running `cloud-sync local up --dir DIR`")
    where.add_argument("--region", help="AWS region of the releases bucket and IoT")
    p.add_argument("--bucket", help="the releases bucket (with --region)")
    p.add_argument("--role-arn", help="IAM role IoT Jobs presigns bundle URLs with"
                                      " (with --region)")


def add_release_group(subparsers: Any) -> None:
    group = subparsers.add_parser("release", help="signed model releases, rolled out in waves")
    commands = group.add_subparsers(dest="release_command", required=True, metavar="COMMAND")
    p = commands.add_parser("create", help="verify, upload and start rolling out a bundle")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--bundle", help="the signed bundle (.tar.gz)")
    source.add_argument("--models", metavar="DIR",
                        help="trained models to bundle and sign with --kms-key-id here")
    p.add_argument("--version", help="the bundle version (with --models)")
    p.add_argument("--out", metavar="B.tar.gz", help="where to keep the KMS-signed bundle "
                   "(with --models; default: a temporary file)")
    key = p.add_mutually_exclusive_group(required=True)
    key.add_argument("--public-key", help="the fleet public key (PEM) to verify it with")
    key.add_argument("--kms-key-id", help="the KMS signing key: signs --models, and its "
                                          "public half verifies the bundle")
    p.add_argument("--canary", action="append", default=[], metavar="STORE",
                   help="a store in the first wave (repeat)")
    p.add_argument("--waves", type=_waves, default=DEFAULT_WAVES, metavar="P,P,...",
                   help="cumulative percentages of the other stores (default 10,50,100)")
    p.add_argument("--soak-s", type=int, default=DEFAULT_SOAK_S,
                   help=f"healthy time after a wave before the next (default {DEFAULT_SOAK_S})")
    p.add_argument("--probation-s", type=int, default=DEFAULT_PROBATION_S,
                   help=f"a store's self-check before SUCCEEDED (default {DEFAULT_PROBATION_S})")
    p.add_argument("--max-error-rate", type=float, default=DEFAULT_MAX_ERROR_RATE)
    p.add_argument("--max-p99-ms", type=float, default=DEFAULT_MAX_P99_MS)
    p.add_argument("--min-requests", type=int, default=DEFAULT_MIN_REQUESTS,
                   help="requests a store's health needs to count as evidence")
    p.add_argument("--min-evidence-share", type=float, default=DEFAULT_MIN_EVIDENCE_SHARE,
                   help="share of a wave's stores that must give health evidence")
    p.add_argument("--max-ctr-drop", type=float, default=DEFAULT_MAX_CTR_DROP,
                   help="relative fall of the wave's click-through that stops it")
    p.add_argument("--min-impressions", type=int, default=DEFAULT_MIN_IMPRESSIONS,
                   help="impressions a side before click-through is judged")
    p.add_argument("--wave-deadline-s", type=int, default=DEFAULT_WAVE_DEADLINE_S,
                   help="then a wave goes on without the stores that have not reported")
    p.add_argument("--min-reported-share", type=float, default=DEFAULT_MIN_REPORTED_SHARE,
                   help="share of a wave that must have reported at its deadline")
    _where(p)
    p.set_defaults(handler=_create)
    for name, text, handler in (
            ("status", "waves, executions and decisions of a release", _status),
            ("promote", "one controller step: next wave, complete, or abort", _promote),
            ("watch", "controller steps until the release completes or aborts", _watch),
            ("abort", "cancel the wave and roll back stores that took it", _abort),
            ("rollback", "send every store that took the release back", _rollback)):
        p = commands.add_parser(name, help=text)
        p.add_argument("version", nargs="?", help="the release (default: the latest)")
        _where(p)
        if name in ("abort", "rollback"):
            p.add_argument("--reason", default=f"{name} by an operator")
        if name == "status":
            p.add_argument("--json", action="store_true", help="print the status as JSON")
        if name == "watch":
            p.add_argument("--interval-s", type=float, default=WATCH_INTERVAL_S)
            p.add_argument("--timeout-s", type=float, help="give up after this long")
        p.set_defaults(handler=handler)


def _clients(args: argparse.Namespace) -> tuple[Any, str, str]:
    """(boto3 factory, bucket, role ARN) for --local or --region."""
    if args.local:
        from cloud_sync.local.stack import LocalCloud

        info = LocalCloud.attach(args.local)
        s3 = info.boto3_client("s3")
        with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou):
            s3.create_bucket(Bucket=LOCAL_RELEASES_BUCKET, CreateBucketConfiguration={
                "LocationConstraint": info.region})
        return info.boto3_client, LOCAL_RELEASES_BUCKET, LOCAL_ROLE_ARN
    if not args.bucket or not args.role_arn:
        raise ValueError("--region needs --bucket and --role-arn")
    import boto3

    def client(service: str) -> Any:
        return boto3.client(service, region_name=args.region)

    return client, args.bucket, args.role_arn


def _controller(args: argparse.Namespace) -> ReleaseController:
    client, bucket, role = _clients(args)
    return ReleaseController(client("iot"), client("s3"), bucket, role)


SPEC_OPTIONS = ("soak_s", "probation_s", "max_error_rate", "max_p99_ms", "min_requests",
                "min_evidence_share", "max_ctr_drop", "min_impressions", "wave_deadline_s",
                "min_reported_share")


def _create(args: argparse.Namespace) -> int:
    if args.models and not (args.kms_key_id and args.version):
        raise ValueError("--models needs --kms-key-id and --version (a PEM key signs with "
                         "`python -m models bundle`)")
    if not args.models and (args.version or args.out):
        raise ValueError("--version and --out go with --models")
    client, bucket, role = _clients(args)
    spec = RolloutSpec(canaries=tuple(args.canary), waves=args.waves,
                       **{name: getattr(args, name) for name in SPEC_OPTIONS})
    with tempfile.TemporaryDirectory() as tmp:
        try:
            bundle, public_key = _signed_bundle(args, client, Path(tmp))
            record = create_release(iot=client("iot"), s3=client("s3"), bucket=bucket,
                                    role_arn=role, bundle=bundle, public_key=public_key,
                                    spec=spec)
        except BundleError as exc:
            raise ValueError(f"bundle refused: {exc}") from exc
    print(f"release {record.release_id}: {record.name} {record.version} in "
          f"s3://{bucket}/{record.bundle['key']}")
    for wave in record.waves:
        print(f"  wave {wave['index']} ({wave['label']}): {len(wave['things'])} stores"
              + (f", job {wave['job_id']}" if wave["job_id"] else ""))
    return 0


def _signed_bundle(args: argparse.Namespace, client: Any, tmp: Path) -> tuple[Path, Any]:
    """The bundle to release and the key that verifies it: given, or signed here by KMS."""
    if args.kms_key_id:
        from cloud_sync.release.kms_signer import KmsSigner, build_with_kms

        if args.models:
            out = Path(args.out) if args.out else tmp / f"bundle-{args.version}.tar.gz"
            return build_with_kms(client("kms"), args.kms_key_id, Path(args.models), out,
                                  version=args.version)
        return Path(args.bundle), KmsSigner(client("kms"), args.kms_key_id).public_key()
    return Path(args.bundle), Path(args.public_key)


def _status(args: argparse.Namespace) -> int:
    status = _controller(args).status(args.version)
    if args.json:
        print(json.dumps(status, indent=2, default=str))
        return 0
    print(f"release {status['version']} ({status['release_id']}): {status['status']}, "
          f"wave {status['current']}")
    for wave in status["waves"]:
        counts = ", ".join(f"{n} {s}" for s, n in sorted(wave.get("counts", {}).items()))
        print(f"  wave {wave['index']} ({wave['label']}, {wave['stores']} stores): "
              f"{wave['job_id'] or 'not started'} {wave.get('job_status', '')} {counts}")
        if "evidence" in wave:
            ev = wave["evidence"]
            print(f"    evidence: health from {ev['health_evidence']} of {ev['reported']} "
                  f"stores reported ({ev['quiet']} quiet); {ev['click_through']}")
        for e in wave.get("executions", []):
            details = " ".join(f"{k}={v}" for k, v in sorted(e["details"].items()))
            print(f"    {e['thing']}: {e['status']} {details}")
    for d in status["decisions"]:
        print(f"  {d['at']} wave {d['wave']} {d['action']}: {d['reason']}")
    return 0


def _print(decision: Decision) -> None:
    print(f"{decision.action}: {decision.reason}", flush=True)


def _promote(args: argparse.Namespace) -> int:
    _print(_controller(args).step(args.version))
    return 0


def _watch(args: argparse.Namespace) -> int:
    decision = _controller(args).watch(args.version, interval_s=args.interval_s,
                                       timeout_s=args.timeout_s, on_decision=_print)
    return 0 if decision.action in ("complete", "done") else 1


def _stop(args: argparse.Namespace, method: str) -> int:
    record = getattr(_controller(args), method)(args.version, args.reason)
    print(f"release {record.version}: {record.status}")
    for rb in record.rollbacks:
        print(f"  rollback job {rb['job_id']}: {len(rb['things'])} stores to {rb['version']}")
    return 0


def _abort(args: argparse.Namespace) -> int:
    return _stop(args, "abort")


def _rollback(args: argparse.Namespace) -> int:
    return _stop(args, "rollback")
