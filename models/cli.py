"""``python -m models``: train, evaluate, timing-eval, bundle, verify, keygen.

Only this entry point configures logging. Domain errors (bad bundle, bad key, unusable
dataset) become a one-line message and exit status 2; anything else is a bug and keeps
its traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from models.datasets.base import BasketDataset

logger = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_FAILED = 2  # a refused bundle, a bad key or an unusable dataset
DATASET_HELP = "completejourney | tafeng[:DIR] | csv:PATH | synthetic[:SEED]"


class DatasetSpecError(ValueError):
    """A ``--dataset`` value that names no known source."""


def load_dataset(spec: str) -> BasketDataset:
    """Load the dataset a ``--dataset`` value names (see ``DATASET_HELP``).

    Real sources go through the next-basket evaluation's parser, so every subcommand
    reads ``--dataset`` the same way; ``synthetic[:SEED]`` is the generated data with
    known purchase cycles (``models.timing.synthetic``).
    """
    kind, _, arg = spec.partition(":")
    if kind == "synthetic":
        from models.timing.synthetic import generate

        try:
            seed = int(arg) if arg else 0
        except ValueError:
            raise DatasetSpecError(f"synthetic seed must be an integer, not {arg!r}") from None
        return generate(seed=seed)
    from models.evaluation import run

    try:
        return run.load_for_evaluation(spec)[0]
    except run.DatasetSpecError as exc:
        raise DatasetSpecError(f"{exc} (or {DATASET_HELP.rsplit(' | ', 1)[1]})") from exc


def _write_json(path: Path, doc: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2, allow_nan=False) + "\n")


# ------------------------------------------------------------------------ train
def _add_train(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", default="completejourney", help=DATASET_HELP)
    p.add_argument("--out", type=Path, default=Path("build/models"), help="models directory")
    p.add_argument("--skip-ranker", action="store_true", help="train timing and segments only")


def cmd_train(args: argparse.Namespace) -> int:
    from models.training import train_all

    ds = load_dataset(args.dataset)
    summary = train_all(ds, args.out, ranker=not args.skip_ranker)
    print(json.dumps(summary["metrics"], indent=2))
    print(f"models written to {args.out}")
    return EXIT_OK


# --------------------------------------------------------------------- evaluate
def _add_evaluate(p: argparse.ArgumentParser) -> None:
    try:
        from models.evaluation import run
    except ImportError as exc:  # the next-basket evaluation is still being written
        p.set_defaults(evaluate_unavailable=str(exc))
        p.add_argument("rest", nargs=argparse.REMAINDER)
        return
    run.add_arguments(p)


def cmd_evaluate(args: argparse.Namespace) -> int:
    if getattr(args, "evaluate_unavailable", None):
        print(f"evaluate is not available: {args.evaluate_unavailable}", file=sys.stderr)
        return EXIT_FAILED
    from models.evaluation import run

    return int(run.main(args))


# ------------------------------------------------------------------ timing-eval
def _add_timing_eval(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", default="completejourney", help=DATASET_HELP)
    p.add_argument("--json", type=Path, help="write the metrics (and segment summary) here")
    p.add_argument("--no-segments", action="store_true", help="skip the segment summary")


def cmd_timing_eval(args: argparse.Namespace) -> int:
    from models.segments.train import fit_segments, format_summary
    from models.timing.evaluate import format_table, train_and_evaluate

    ds = load_dataset(args.dataset)
    run = train_and_evaluate(ds)
    print(format_table(run.metrics))
    doc: dict[str, Any] = {"timing": run.metrics}
    if not args.no_segments:
        seg = fit_segments(ds)
        print("\nSegments as of the last day of the data:\n" + format_summary(seg))
        doc["segments"] = seg.summary()
    if args.json:
        _write_json(args.json, doc)
        print(f"metrics written to {args.json}")
    return EXIT_OK


# ------------------------------------------------------------- bundle / verify
def _add_bundle(p: argparse.ArgumentParser) -> None:
    p.add_argument("--models", type=Path, required=True, help="directory written by train")
    p.add_argument("--key", type=Path, required=True, help="ECDSA P-256 private key (PEM)")
    p.add_argument("--out", type=Path, required=True, help="bundle directory or .tar.gz")
    p.add_argument("--version", required=True)
    p.add_argument("--name", default=None, help="bundle name (default instore-models)")


def cmd_bundle(args: argparse.Namespace) -> int:
    from models.bundle import build_bundle, load_private_key
    from models.bundle.build import DEFAULT_NAME

    out = build_bundle(
        args.models, args.out, load_private_key(args.key),
        version=args.version, name=args.name or DEFAULT_NAME,
    )
    print(f"signed bundle {args.version} written to {out}")
    return EXIT_OK


def _add_verify(p: argparse.ArgumentParser) -> None:
    p.add_argument("bundle", type=Path, help="bundle directory or .tar.gz")
    p.add_argument("--public-key", type=Path, required=True,
                   help="the fleet's ECDSA P-256 public key (PEM)")


def cmd_verify(args: argparse.Namespace) -> int:
    from models.bundle import verify_bundle

    verified = verify_bundle(args.bundle, args.public_key)
    m = verified.manifest
    print(f"OK {m['name']} {m['version']} created {m['created_at']}")
    for name, listed in m["files"].items():
        print(f"  {listed.sha256}  {listed.bytes:>10}  {name}")
    return EXIT_OK


def _add_keygen(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", type=Path, required=True, help="directory for the two PEM files")


def cmd_keygen(args: argparse.Namespace) -> int:
    from models.bundle import generate_keypair

    priv, pub = generate_keypair(args.out)
    print(f"private key: {priv}\npublic key:  {pub}")
    return EXIT_OK


COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None],
                          Callable[[argparse.Namespace], int]]] = {
    "train": ("train timing, segments (and the ranker) and export ONNX", _add_train, cmd_train),
    "evaluate": ("next-basket evaluation table (all methods)", _add_evaluate, cmd_evaluate),
    "timing-eval": ("purchase-timing table with baselines, and segments",
                    _add_timing_eval, cmd_timing_eval),
    "bundle": ("build and sign a model bundle", _add_bundle, cmd_bundle),
    "verify": ("verify a bundle's signature and digests", _add_verify, cmd_verify),
    "keygen": ("generate an ECDSA P-256 signing key pair", _add_keygen, cmd_keygen),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m models",
        description="Train, evaluate, export, bundle and verify the in-store models.",
        epilog="Domain errors print 'error: <kind>: <reason>' and exit with status 2.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (help_text, add, run) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        add(p)
        p.set_defaults(func=run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    from models.bundle.errors import BundleError
    from models.datasets.csv import CsvFormatError
    from models.segments.train import SegmentDataError
    from models.timing.data import TimingDataError

    start = time.perf_counter()
    domain_errors = (
        BundleError, CsvFormatError, TimingDataError, SegmentDataError, DatasetSpecError,
    )
    try:
        code = int(args.func(args))
    except domain_errors as exc:
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_FAILED
    logger.info("%s finished in %.1fs", args.command, time.perf_counter() - start)
    return code
