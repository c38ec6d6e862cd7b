"""`cloud-sync retrain`: retrain from the lake, gate against the champion, sign what passes.

    cloud-sync retrain (--local DIR | --region R --bucket B) --key PEM --out DIR
        [--champion PATH|s3://B/K] [--stores ID ...] [--workers N | --scheduler ADDR]
        [--holdout-weeks N] [--json REPORT] [--catalog CSV|s3://B/K] [--upload BUCKET]

Exit code 0: the chain's candidate passed and its bundle is in OUT/<version>/;
`EXIT_REFUSED` (3): refused, with the reason on one line; 2: an error.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from cloud_sync.retrain.config import (
    DEFAULT_HOLDOUT_WEEKS,
    DEFAULT_MAX_EVAL_SHOPPERS,
    DEFAULT_MIN_HELDOUT_SHOPPERS,
    DEFAULT_MIN_STORE_SHOPPERS,
    LakeLocation,
)
from cloud_sync.retrain.run import (
    EXIT_PASSED,
    RetrainOutcome,
    RetrainRequest,
    retrain,
    write_report,
)
from models.bundle import BundleError


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"expected a positive number, not {value!r}")
    return number


def add_retrain_group(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "retrain", help="retrain every model from the lake (chain and stores, on Dask), gate"
                        " the candidate against the champion, sign and upload what passes")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--local", type=Path, metavar="DIR",
                       help="a running `cloud-sync local up --dir DIR` (its lake bucket)")
    where.add_argument("--bucket", help="the lake bucket (AWS credentials from the environment)")
    p.add_argument("--region", help="AWS region of the lake bucket")
    p.add_argument("--key", type=Path, required=True, metavar="PEM",
                   help="the fleet's signing key (private PEM)")
    p.add_argument("--out", type=Path, required=True, metavar="DIR",
                   help="bundles go to DIR/<version>/bundle.tar.gz (stores: .../stores/ID/)")
    p.add_argument("--champion", metavar="PATH|s3://BUCKET/KEY",
                   help="the released bundle to beat (none: a first release)")
    p.add_argument("--public-key", type=Path, metavar="PEM",
                   help="verifies the champion (default: the public half of --key)")
    p.add_argument("--stores", nargs="+", metavar="ID", help="only these stores (default all)")
    dask = p.add_mutually_exclusive_group()
    dask.add_argument("--workers", type=_positive, default=2,
                      help="worker processes of a local Dask cluster (default 2)")
    dask.add_argument("--scheduler", metavar="ADDR",
                      help="a running Dask scheduler, e.g. tcp://scheduler:8786")
    p.add_argument("--holdout-weeks", type=_positive, default=DEFAULT_HOLDOUT_WEEKS,
                   help=f"newest weeks held out for the gate (default {DEFAULT_HOLDOUT_WEEKS})")
    p.add_argument("--min-store-shoppers", type=_positive, default=DEFAULT_MIN_STORE_SHOPPERS,
                   help="shoppers with 3+ baskets a store needs for its own candidate "
                        f"(default {DEFAULT_MIN_STORE_SHOPPERS})")
    p.add_argument("--min-heldout-shoppers", type=_positive,
                   default=DEFAULT_MIN_HELDOUT_SHOPPERS,
                   help="held-out shoppers needed to compare with the champion "
                        f"(default {DEFAULT_MIN_HELDOUT_SHOPPERS})")
    p.add_argument("--max-eval-shoppers", type=_positive, default=DEFAULT_MAX_EVAL_SHOPPERS,
                   help=f"held-out shoppers scored per scope (default {DEFAULT_MAX_EVAL_SHOPPERS})")
    p.add_argument("--catalog", metavar="CSV|s3://BUCKET/KEY",
                   help="the chain's catalog (product_id, category): categories for the"
                        " ranker and the timing model")
    p.add_argument("--upload", metavar="BUCKET",
                   help="also upload to s3://BUCKET/candidates/<version>/bundle.tar.gz")
    p.add_argument("--json", type=Path, metavar="REPORT", help="write the report here")
    p.set_defaults(handler=_retrain)


def _retrain(args: argparse.Namespace) -> int:
    from cloud_sync.local.stack import LAKE_BUCKET

    if args.local is not None:
        location = LakeLocation(bucket=LAKE_BUCKET, local_dir=args.local.resolve())
    else:
        location = LakeLocation(bucket=args.bucket, region=args.region)
    try:
        outcome = _run(args, location)
    except BundleError as exc:  # a bad key or champion: one line, exit code 2
        raise ValueError(f"{type(exc).__name__}: {exc}") from exc
    if args.json:
        write_report(outcome.report, args.json)
    for scope, result in outcome.results.items():
        verdict = result.gate["verdict"] if result.gate else result.status
        print(f"{scope}: {verdict} ({result.seconds:.1f} s): {result.why}")
    for scope, path in outcome.bundles.items():
        where = outcome.report["uploaded"].get(scope)
        print(f"bundle {scope}: {path}" + (f" -> {where}" if where else ""))
    if outcome.exit_code != EXIT_PASSED:
        print(f"cloud-sync: {' '.join(outcome.reason.split())}", file=sys.stderr)
    return outcome.exit_code


def _run(args: argparse.Namespace, location: LakeLocation) -> RetrainOutcome:
    return retrain(RetrainRequest(
        location=location, key=args.key, out=args.out, holdout_weeks=args.holdout_weeks,
        champion=args.champion, public_key=args.public_key,
        stores=tuple(args.stores) if args.stores else None, workers=args.workers,
        scheduler=args.scheduler, catalog=args.catalog, upload_bucket=args.upload,
        overrides={"min_store_shoppers": args.min_store_shoppers,
                   "min_heldout_shoppers": args.min_heldout_shoppers,
                   "max_eval_shoppers": args.max_eval_shoppers}))
