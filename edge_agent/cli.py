"""`edge-agent` command line. Flags override settings (env `EDGE_*`, config file, defaults).

The command and flag names are relied on by operators' scripts: keep them.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from edge_agent.settings import Settings, SettingsError, load_settings
from edge_agent.storage.lock import DatabaseInUse, DatabaseLock
from models.masterdata.records import KINDS

logger = logging.getLogger(__name__)
# Commands that need an extra beyond what a store runs (pyproject.toml).
COMMAND_EXTRAS = {"train": "train", "demo": "demo"}


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, help="TOML settings file (also EDGE_CONFIG)")
    parser.add_argument("--store-id", help="this store's id (EDGE_STORE_ID)")
    parser.add_argument("--broker", help="MQTT broker URL, mqtt://HOST:PORT (EDGE_BROKER)")
    parser.add_argument("--db", type=Path, help="SQLite database path (EDGE_DB)")
    parser.add_argument("--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"])


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="edge-agent",
                                     description="In-store personalization edge agent")
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="run the agent: MQTT ingestion and the HTTP API")
    _add_common(run)
    run.add_argument("--port", type=int, help="HTTP port (EDGE_PORT)")
    run.add_argument("--workers", dest="http_workers", type=int,
                     help="HTTP worker processes (EDGE_HTTP_WORKERS; default 1: HTTP and "
                          "ingestion in one process)")

    simulate = commands.add_parser("simulate", help="publish simulated store traffic")
    _add_common(simulate)
    from edge_agent.simulator import cli as simulator_cli

    simulator_cli.add_arguments(simulate)

    load = commands.add_parser(
        "import", help="apply master data from a file: catalog, customers, consent, erasure",
        description="Validate every record (errors name the line and the field; nothing is"
                    " changed if any is wrong), then apply them in one transaction. The same"
                    " file imported again changes nothing. Formats: docs/master-data.md.")
    _add_common(load)
    load.add_argument("kind", choices=[*sorted(KINDS), "layout"], help="what the file holds")
    load.add_argument("file", type=Path, help="a .csv file with a header row, or JSON lines")
    load.add_argument("--version", dest="md_version", type=int,
                      help="the records' version (default: now, in epoch milliseconds); a"
                           " record never replaces one of a higher version")

    train = commands.add_parser(
        "train", help="train and sign a model bundle from this store's own history",
        description="Train the recommendation ranker and the shopper segments on the store's"
                    " sales (and the purchase-timing model when the history is long enough),"
                    " then sign them as a bundle the agent loads (drop it into"
                    " model_bundle_dir, or POST /v1/admin/models/load).")
    _add_common(train)
    train.add_argument("--key", type=Path, required=True,
                       help="the ECDSA P-256 private key to sign with (PEM; `python -m models"
                            " keygen`); the agent's model_public_key must be its public half")
    train.add_argument("--out", type=Path, required=True,
                       help="where to write the bundle (a directory, or a .tar.gz)")
    train.add_argument("--bundle-version", help="default: the time, YYYY.MM.DD.HHMMSS")

    broker = commands.add_parser(
        "broker-config", help="write the store broker's accounts and ACL (Mosquitto)",
        description="Write mosquitto.conf, passwd (PBKDF2-SHA512, as mosquitto_passwd"
                    " writes it), acl and credentials.json into --out: one account per device"
                    " class (pos, shelf, zone, presence, interaction), each allowed to publish"
                    " only under its own topic, and the agent's, allowed only to subscribe."
                    " Running it again issues new passwords. docs/operations.md, section 1.")
    broker.add_argument("--store", dest="store_id", required=True, help="the store's id")
    broker.add_argument("--out", type=Path, required=True, help="the directory to write")
    broker.add_argument("--port", type=int, default=1883, help="the listener's port (1883)")
    broker.add_argument("--bind", help="the listener's address (default: all)")

    demo = commands.add_parser("demo", help="the whole system on this machine: stores with "
                                            "their agents and simulators, the local cloud")
    _add_common(demo)
    demo.add_argument("--port", type=int, help="HTTP port (EDGE_PORT)")
    from edge_agent.demo import runner as demo_runner

    demo_runner.add_arguments(demo)
    return parser


def settings_from_args(args: argparse.Namespace, **defaults: object) -> Settings:
    flags = {name: getattr(args, name, None)
             for name in ("store_id", "broker", "db", "port", "log_level", "http_workers")}
    for name, value in defaults.items():
        if flags.get(name) is None:
            flags[name] = value
    return load_settings(config_file=args.config, **flags)


def _run(args: argparse.Namespace) -> int:
    import uvicorn

    from edge_agent.api.app import create_app
    from edge_agent.masterdata.layout import with_imported_layout

    settings = with_imported_layout(settings_from_args(args))
    if settings.broker is None:
        raise SettingsError("broker (EDGE_BROKER): required for `run`; use `demo` for an "
                            "embedded broker")
    # Refuse a second agent on this database, and a port in use, in one line each before
    # uvicorn starts (its lifespan takes the lock for good).
    probe = DatabaseLock(settings.db)
    probe.acquire()
    probe.release()
    from edge_agent.broker import port_is_free

    if not port_is_free(settings.http_host, settings.port):
        raise SettingsError(f"port (EDGE_PORT): {settings.http_host}:{settings.port} is in use;"
                            " choose another with --port or EDGE_PORT")
    if settings.http_workers > 1:
        from edge_agent.api.workers import serve_with_workers

        return serve_with_workers(settings)
    # uvicorn handles SIGINT/SIGTERM and runs the lifespan, which starts and stops the agent.
    # An agent that gives up (ingestion kept failing) ends the process the same way, then
    # the exit code says so: systemd restarts a process that failed.
    failed: list[str] = []

    def give_up(why: str) -> None:
        failed.append(why)
        os.kill(os.getpid(), signal.SIGTERM)

    from edge_agent.api.server import uvicorn_options

    uvicorn.run(create_app(settings, on_fatal=give_up), host=settings.http_host,
                port=settings.port, log_level=settings.log_level.lower(), access_log=False,
                **uvicorn_options(settings))
    return 1 if failed else 0


def _import(args: argparse.Namespace) -> int:
    import hashlib
    import time

    from edge_agent.masterdata import MasterDataError, apply_records, read_records
    from edge_agent.storage import open_database

    settings = settings_from_args(args)
    if not args.file.is_file():
        raise SettingsError(f"file: {args.file} does not exist")
    if args.kind == "layout":
        from edge_agent.masterdata.layout import LayoutError, import_layout, running_store_notice

        try:
            layout_id = import_layout(settings, args.file)
        except LayoutError as exc:
            print(f"edge-agent: {args.file}: {exc}; nothing changed", file=sys.stderr)
            return 1
        print(f"layout: {layout_id} from {args.file} is this store's layout")
        print(running_store_notice(settings))
        return 0
    content = args.file.read_bytes()
    # The same file imported twice is the same batch: the second time changes nothing.
    batch_id = f"file:{args.kind}:{hashlib.sha256(content).hexdigest()}"
    version = args.md_version if args.md_version is not None else int(time.time() * 1000)
    db = open_database(settings.db, synchronous=settings.sqlite_synchronous)
    try:
        result = apply_records(db.conn, args.kind, read_records(args.file), version=version,
                               batch_id=batch_id)
    except MasterDataError as exc:
        print(f"edge-agent: {args.file}: {exc}", file=sys.stderr)
        return 1
    finally:
        db.close()
    if result.already_applied:
        print(f"{args.kind}: {args.file} was already imported; nothing changed")
    else:
        stale = f", {result.stale} older than what the store holds (kept)" if result.stale else ""
        print(f"{args.kind}: {result.applied} records applied from {args.file}"
              f" (version {version}){stale}")
    return 0


def _train(args: argparse.Namespace) -> int:
    import tempfile

    from edge_agent.store_training import TRAINED_MARKER, train_store_models
    from models.bundle import build_bundle, load_private_key
    from models.bundle.version import time_version

    settings = settings_from_args(args)
    if not settings.db.is_file():
        raise SettingsError(f"db (EDGE_DB): {settings.db} does not exist")
    if not args.key.is_file():
        raise SettingsError(f"key: {args.key} does not exist")
    version = args.bundle_version or time_version()
    with tempfile.TemporaryDirectory(prefix="edge-train-") as work:
        models_dir = train_store_models(settings.db, Path(work) / "models", timing_from="store")
        # Written beside its place, then renamed into it: a watcher of that folder never sees
        # half a bundle.
        partial = args.out.with_name(f".{args.out.name}.partial")
        build_bundle(models_dir, partial, load_private_key(args.key), version=version,
                     name=f"store-{settings.store_id}")
        os.replace(partial, args.out)
        bundle = args.out
        summary = json.loads((models_dir / TRAINED_MARKER).read_text())["metrics"]
    skipped = summary.get("timing", {}).get("skipped")
    print(f"bundle {version} written to {bundle}"
          f" (models: {', '.join(name for name in summary if name != 'timing' or not skipped)})")
    if skipped:
        print(f"no purchase-timing model: {skipped}; the shopping list needs one (a chain"
              " bundle)")
    return 0


def _broker_config(args: argparse.Namespace) -> int:
    from edge_agent.broker_auth import CREDENTIALS_FILE, write_store_broker_config
    from edge_agent.settings import STORE_ID_PATTERN

    if not STORE_ID_PATTERN.match(args.store_id):
        raise SettingsError("store: must be 1-64 letters, digits, '-' or '_'")
    config = write_store_broker_config(args.store_id, args.out, port=args.port, bind=args.bind)
    print(f"store broker accounts for {args.store_id} written to {config.directory}:")
    for account in config.accounts:
        verb = "publishes to" if account.access == "write" else "subscribes to"
        print(f"  {account.device_class:<12} {account.username:<32} {verb} {account.topic}")
    print(f"passwords: {config.directory / CREDENTIALS_FILE} (owner only); give the agent its"
          " own as mqtt_username / mqtt_password")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=getattr(args, "log_level", None) or "INFO",
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        if args.command == "run":
            return _run(args)
        if args.command == "simulate":
            from edge_agent.simulator import cli as simulator_cli

            return simulator_cli.run(settings_from_args(args), args)
        if args.command == "import":
            return _import(args)
        if args.command == "train":
            return _train(args)
        if args.command == "broker-config":
            return _broker_config(args)
        if args.command == "demo":
            from edge_agent.demo import runner as demo_runner

            return demo_runner.run_demo(settings_from_args(args), args)
    except (SettingsError, DatabaseInUse) as exc:
        print(f"edge-agent: {exc}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as exc:
        from cloud_sync.entry import missing_extra

        extra = COMMAND_EXTRAS.get(args.command)
        message = missing_extra(f"edge-agent {args.command}", exc, extra) if extra else None
        if message is None:
            raise
        print(message, file=sys.stderr)
        return 2
    return 1


if __name__ == "__main__":
    sys.exit(main())
