"""`cloud-sync analyze`: the Bedrock analysis of shoppers, from the lake.

    cloud-sync analyze shopper ID  LAKE --catalog CSV [--double] [--push]  one shopper, on demand
    cloud-sync analyze fleet       LAKE --catalog CSV --batch-bucket B --role-arn ARN [--double]
                                   [--push [--credentials DIR] [--store ID ...]]
    cloud-sync analyze score       LAKE --catalog CSV [--until DATE] [--json PATH]
    cloud-sync analyze ab          [--since TIME] [--json PATH]

LAKE is `--local DIR` (a running `cloud-sync local up`), `--bucket B [--region R]` or
`--parquet FILE`. Settings come from EDGE_ANALYSIS_* (settings.py) and boto3's credential
chain; without credentials every shopper gets the fallback, saying so. `--double` answers
from the local Bedrock double (and, for `fleet`, runs its batch jobs on the local cloud's
S3, or on a moto server started for the run). `--push` sends each store its own shoppers'
results (push.py). `--bundle PATH --public-key PEM`: the fallback answers from that release
bundle's timing and segment models (model_fallback.py), else from simple rules.
"""

from __future__ import annotations

import argparse
import contextlib
import json
from dataclasses import asdict, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from cloud_sync.analysis.ab import ABConfig, ab_report
from cloud_sync.analysis.accuracy import AccuracyStore, by_group, purchase_days
from cloud_sync.analysis.batch import BatchSettings, FleetRun
from cloud_sync.analysis.bedrock import Analyst
from cloud_sync.analysis.fallback import ValueBands
from cloud_sync.analysis.history import AnalysisHistory
from cloud_sync.analysis.model_fallback import (
    ModelFallback,
    add_bundle_arguments,
    models_from_args,
)
from cloud_sync.analysis.push import add_push_arguments, push_from_args, push_summary
from cloud_sync.analysis.settings import AnalysisSettings
from cloud_sync.analysis.summary import ShopperSummary, summarize_lake

DEFAULT_DAYS = 365  # a year holds every rhythm a supermarket sees, seasonal ones included
LOCAL_BATCH_BUCKET = "instore-analysis"  # the local cloud's bucket for batch files
LOCAL_ROLE_ARN = "arn:aws:iam::123456789012:role/local-bedrock-batch"


def add_analyze_group(subparsers: Any) -> None:
    group = subparsers.add_parser("analyze", help="deep shopper analysis on Amazon Bedrock")
    commands = group.add_subparsers(dest="analyze_command", required=True, metavar="COMMAND")
    one = commands.add_parser("shopper", help="analyse one shopper now (Converse)")
    one.add_argument("shopper", metavar="PSEUDONYM")
    add_lake_arguments(one)
    one.add_argument("--double", action="store_true", help="the local Bedrock double")
    add_push_arguments(one)
    add_bundle_arguments(one)
    one.set_defaults(handler=_shopper)
    fleet = commands.add_parser("fleet", help="every shopper, through Bedrock batch inference")
    add_lake_arguments(fleet)
    fleet.add_argument("--batch-bucket", help="S3 bucket for the jobs' input and output")
    fleet.add_argument("--role-arn", help="the service role Bedrock's batch jobs assume")
    fleet.add_argument("--poll-s", type=float, default=60.0, help="between job status looks")
    fleet.add_argument("--double", action="store_true", help="the local Bedrock double")
    add_push_arguments(fleet)
    add_bundle_arguments(fleet)
    fleet.set_defaults(handler=_fleet)
    score = commands.add_parser("score", help="score stored predictions against the lake")
    add_lake_arguments(score)
    score.add_argument("--until", type=date.fromisoformat, metavar="YYYY-MM-DD",
                       help="the lake is complete to this day (default: its newest sale)")
    score.add_argument("--json", type=Path, metavar="PATH", help="also write the table here")
    score.set_defaults(handler=_score)
    ab = commands.add_parser("ab", help="the A/B report of analysis models and its winner")
    ab.add_argument("--state-dir", type=Path, help="history files (.analysis)")
    ab.add_argument("--since", metavar="ISO-TIME", help="only analyses from this time on")
    ab.add_argument("--json", type=Path, metavar="PATH", help="also write the report here")
    ab.set_defaults(handler=_ab)


def add_lake_arguments(p: argparse.ArgumentParser) -> None:
    """Where the lake is, the catalog, how far back, where state is kept (here and in
    `python -m cloud_sync.analysis`)."""
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--local", type=Path, metavar="DIR",
                       help="a running `cloud-sync local up --dir DIR` (its lake bucket)")
    where.add_argument("--bucket", help="the lake bucket (AWS credentials from the environment)")
    where.add_argument("--parquet", type=Path, metavar="FILE", help="lake rows in one file")
    p.add_argument("--region", help="AWS region of the lake bucket")
    p.add_argument("--catalog", required=True, metavar="CSV|s3://BUCKET/KEY",
                   help="the chain's catalog (product_id, category)")
    p.add_argument("--days", type=int, default=DEFAULT_DAYS, help="history read, in days")
    p.add_argument("--state-dir", type=Path, help="budget and history files (.analysis)")


def load_lake(args: argparse.Namespace, now: datetime) -> tuple[Any, dict[str, str]]:
    """(lake rows of the last `--days`, the catalog) from the chosen lake."""
    import pyarrow.parquet as pq

    from cloud_sync.retrain.config import LakeLocation
    from cloud_sync.retrain.run import load_catalog

    if args.parquet:
        location = LakeLocation(bucket="", region=args.region)
        rows = pq.read_table(args.parquet)
    else:
        from cloud_sync.local.stack import LAKE_BUCKET

        location = (LakeLocation(bucket=LAKE_BUCKET, local_dir=args.local.resolve())
                    if args.local else LakeLocation(bucket=args.bucket, region=args.region))
        rows = location.lake().read(since=(now - timedelta(days=args.days)).date())
    return rows, load_catalog(args.catalog, location)


def settings_of(args: argparse.Namespace) -> AnalysisSettings:
    settings = AnalysisSettings.from_env()
    return replace(settings, state_dir=args.state_dir) if args.state_dir else settings


def with_double(settings: AnalysisSettings, endpoint_url: str) -> AnalysisSettings:
    return replace(settings, bedrock=replace(
        settings.bedrock, endpoint_url=endpoint_url, access_key_id="local-double",
        secret_access_key="local-double"))


def _summaries(args: argparse.Namespace, now: datetime
               ) -> tuple[dict[str, ShopperSummary], set[str], Any, ModelFallback | None]:
    """The summaries, the catalog's categories, the lake rows they came from and the
    model-based fallback (`--bundle`), from the same rows."""
    rows, categories = load_lake(args, now)
    return (summarize_lake(rows, categories, now=now), set(categories.values()), rows,
            models_from_args(args, rows, categories, now))


def _shopper(args: argparse.Namespace) -> int:
    from cloud_sync.local.bedrock_double import BedrockDouble

    summaries, taxonomy, rows, models = _summaries(args, datetime.now(UTC))
    if args.shopper not in summaries:
        raise ValueError(f"no sales of shopper {args.shopper} in the lake")
    settings = settings_of(args)
    with contextlib.ExitStack() as stack:
        if args.double:
            settings = with_double(settings, stack.enter_context(BedrockDouble()).endpoint_url)
        analyst = Analyst(settings, taxonomy, models=models,
                          bands=ValueBands.from_summaries(summaries.values()))
        result = analyst.analyze(summaries[args.shopper])
    print(result.model_dump_json())
    if args.push:
        print(json.dumps({"pushed": push_summary(push_from_args(args, rows, [result]))}))
    return 0


def _fleet(args: argparse.Namespace) -> int:
    from cloud_sync.local.bedrock_double import BedrockDouble
    from cloud_sync.local.moto_server import MotoServer, boto3_client

    summaries, taxonomy, rows, models = _summaries(args, datetime.now(UTC))
    settings = settings_of(args)
    with contextlib.ExitStack() as stack:
        if args.local:
            from cloud_sync.local.stack import LocalCloud

            endpoint = LocalCloud.attach(args.local).moto_endpoint
        elif args.double:  # no S3 at hand: a moto server for this run's batch files
            endpoint = stack.enter_context(MotoServer()).endpoint_url
        s3 = boto3_client("s3", endpoint) if args.local or args.double else None
        bucket, role = args.batch_bucket, args.role_arn
        if s3 is not None:
            bucket, role = bucket or LOCAL_BATCH_BUCKET, role or LOCAL_ROLE_ARN
            with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou):
                s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={
                    "LocationConstraint": "eu-west-1"})
        else:
            import boto3

            if not bucket or not role:
                raise ValueError("--batch-bucket and --role-arn are needed with real AWS")
            s3 = boto3.client("s3", region_name=settings.bedrock.region)
        if args.double:
            double = stack.enter_context(BedrockDouble(s3_endpoint_url=endpoint))
            settings = with_double(settings, double.endpoint_url)
        analyst = Analyst(settings, taxonomy, models=models,
                          bands=ValueBands.from_summaries(summaries.values()))
        report = FleetRun(analyst, BatchSettings(bucket=bucket, role_arn=role,
                                                 poll_s=0.05 if args.double else args.poll_s),
                          s3=s3).run(summaries.values())
    pushed = push_summary(push_from_args(args, rows, report.results)) if args.push else None
    print(json.dumps({"run_id": report.run_id, "shoppers": len(report.results),
                      "counts": report.counts(), "reused": report.reused,
                      "on_demand": report.on_demand, "jobs": [asdict(j) for j in report.jobs],
                      "dollars": round(sum(r.cost.dollars for r in report.results), 6),
                      "seconds": report.seconds, "pushed": pushed}, indent=2))
    return 0


def _score(args: argparse.Namespace) -> int:
    rows, categories = load_lake(args, datetime.now(UTC))
    purchases = purchase_days(rows, categories)
    until = args.until or max((d[-1] for d in purchases.values()), default=None)
    if until is None:
        raise ValueError("no sales in the lake: nothing to score against")
    store = AccuracyStore(AnalysisHistory(settings_of(args).state_dir / "history.sqlite"))
    new, pending = store.score(purchases, until)
    table = [{"producer": p, "arm": a, **asdict(s)}
             for (p, a), s in by_group(store.scores()).items()]
    print(f"lake to {until}: {new} predictions newly scored, {pending} pending")
    print(f"{'producer':<46} {'arm':>3} {'scored':>6} {'missed':>6} {'±2 d':>6} "
          f"{'|off|':>6} {'cover':>6}")
    for t in table:
        print(f"{t['producer']:<46} {t['arm']:>3} {t['scored']:>6} {t['missed']:>6} "
              f"{_fmt(t['within_share'])} {_fmt(t['mean_abs_days_off'])} {_fmt(t['coverage'])}")
    if args.json:
        args.json.write_text(json.dumps({"until": str(until), "new": new, "pending": pending,
                                         "groups": table}, indent=2) + "\n")
    return 0


def _ab(args: argparse.Namespace) -> int:
    settings = settings_of(args)
    config = settings.ab or ABConfig(model_a=settings.bedrock.model_id)
    history = AnalysisHistory(settings.state_dir / "history.sqlite")
    rows = history.rows(since=args.since)
    results, ids = [r for _, r in rows], {i for i, _ in rows}
    scores = [s for s in AccuracyStore(history).scores() if s.analysis_id in ids]
    report = ab_report(config, results, scores)
    print(json.dumps(report.to_dict(), indent=2, default=str))
    if args.json:
        args.json.write_text(json.dumps(report.to_dict(), indent=2, default=str) + "\n")
    return 0


def _fmt(value: float | None) -> str:
    return f"{'-':>6}" if value is None else f"{value:>6.2f}"
