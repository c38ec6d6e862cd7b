"""`python -m cloud_sync.analysis`: analyse one shopper, or every one, from the lake.

    python -m cloud_sync.analysis (--local DIR | --bucket B [--region R] | --parquet FILE)
        --catalog CSV (--shopper PSEUDONYM | --all) [--days N] [--double] [--state-dir DIR]

Prints one JSON analysis a line, each saying its producer (bedrock or fallback, and why).
Bedrock settings come from the environment (EDGE_ANALYSIS_*, see settings.py) and boto3's
credential chain; without credentials every shopper gets the fallback, saying so.
`--double` starts the local Bedrock double for the run (the Bedrock path without AWS).
`cloud-sync analyze` (commands.py) is the same with batch inference, scoring and the A/B.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
from collections.abc import Sequence
from datetime import UTC, datetime

from cloud_sync.analysis.bedrock import Analyst
from cloud_sync.analysis.commands import (
    add_lake_arguments,
    load_lake,
    settings_of,
    with_double,
)
from cloud_sync.analysis.fallback import ValueBands
from cloud_sync.analysis.model_fallback import add_bundle_arguments, models_from_args
from cloud_sync.analysis.summary import summarize_lake

PROG = "python -m cloud_sync.analysis"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    add_lake_arguments(p)
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("--shopper", metavar="PSEUDONYM", help="one shopper")
    who.add_argument("--all", action="store_true", help="every shopper in the lake")
    p.add_argument("--double", action="store_true",
                   help="answer from a local Bedrock double (no AWS needed)")
    add_bundle_arguments(p)
    p.add_argument("--log-level", default="WARNING",
                   choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    return p


def run(args: argparse.Namespace) -> int:
    now = datetime.now(UTC)
    settings = settings_of(args)
    rows, categories = load_lake(args, now)
    summaries = summarize_lake(rows, categories, now=now)
    if args.shopper and args.shopper not in summaries:
        print(f"{PROG}: no sales of shopper {args.shopper} in the lake", file=sys.stderr)
        return 2
    chosen = [summaries[args.shopper]] if args.shopper else list(summaries.values())
    with contextlib.ExitStack() as stack:
        if args.double:
            from cloud_sync.local.bedrock_double import BedrockDouble

            settings = with_double(settings, stack.enter_context(BedrockDouble()).endpoint_url)
        analyst = Analyst(settings, set(categories.values()),
                          models=models_from_args(args, rows, categories, now),
                          bands=ValueBands.from_summaries(summaries.values()))
        for result in analyst.analyze_all(chosen):
            print(result.model_dump_json(), flush=True)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return run(args)
    except (ValueError, OSError) as exc:
        print(f"{PROG}: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
