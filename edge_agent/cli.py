"""`edge-agent` command line. Flags override settings (env `EDGE_*`, config file, defaults).

The command and flag names are relied on by operators' scripts: keep them.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from edge_agent.masterdata.records import KINDS
from edge_agent.settings import Settings, SettingsError, load_settings
from edge_agent.storage.lock import DatabaseInUse, DatabaseLock

logger = logging.getLogger(__name__)


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
    load.add_argument("kind", choices=sorted(KINDS), help="what the file holds")
    load.add_argument("file", type=Path, help="a .csv file with a header row, or JSON lines")
    load.add_argument("--version", dest="md_version", type=int,
                      help="the records' version (default: now, in epoch milliseconds); a"
                           " record never replaces one of a higher version")

    demo = commands.add_parser("demo", help="a whole store on this machine: broker, agent, "
                                            "simulator")
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

    settings = settings_from_args(args)
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

    uvicorn.run(create_app(settings, on_fatal=give_up), host=settings.http_host,
                port=settings.port, log_level=settings.log_level.lower(), access_log=False)
    return 1 if failed else 0


def _import(args: argparse.Namespace) -> int:
    import hashlib
    import time

    from edge_agent.masterdata import MasterDataError, apply_records, read_records
    from edge_agent.storage import open_database

    settings = settings_from_args(args)
    if not args.file.is_file():
        raise SettingsError(f"file: {args.file} does not exist")
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
        if args.command == "demo":
            from edge_agent.demo import runner as demo_runner

            return demo_runner.run_demo(settings_from_args(args), args)
    except (SettingsError, DatabaseInUse) as exc:
        print(f"edge-agent: {exc}", file=sys.stderr)
        return 2
    return 1


if __name__ == "__main__":
    sys.exit(main())
