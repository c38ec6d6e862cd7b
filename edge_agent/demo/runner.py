"""`edge-agent demo`: the whole system on one laptop with one command.

By default two stores and their cloud (`edge_agent/demo/fleet.py`). With `--no-cloud`, or
without Mosquitto (the cloud's stand-in for IoT Core), one store as an island, as below.
With no broker configured it starts a local one (Mosquitto when installed, since the agent
speaks MQTT 5; else the embedded amqtt broker, MQTT 3.1.1 only), seeds the demo catalog and
shoppers into the database, starts the agent, back-fills purchase history, then runs the store
simulator live until Ctrl-C or SIGTERM, and shuts everything down in reverse order.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import threading
from typing import TYPE_CHECKING

from edge_agent.broker import find_mosquitto
from edge_agent.demo.common import (
    DEMO_HISTORY_DAYS,
    DEMO_RATE,
    DEMO_SHOPPERS,
    DEMO_STORES,
    EXIT_FAILURE,
    EXIT_OK,
    EXIT_USAGE,
    LOCAL_BROKERS,
    broker_accounts,
    demo_settings,
    make_simulation,
    port_in_use,
    start_local_broker,
)
from edge_agent.demo.store import open_store
from edge_agent.settings import Settings
from edge_agent.simulator.cli import stop_on_signals
from edge_agent.simulator.publisher import PublisherError
from edge_agent.simulator.simulation import SimulatorConfigError

if TYPE_CHECKING:
    pass

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The demo's own flags (the lead's CLI adds --store-id, --broker, --db, --config)."""
    parser.add_argument("--rate", type=float, default=DEMO_RATE, metavar="N",
                        help=f"simulated events per second, per store (default {DEMO_RATE:g})")
    parser.add_argument("--history-days", type=int, default=DEMO_HISTORY_DAYS, metavar="D",
                        help=f"days of past purchases to back-fill (default {DEMO_HISTORY_DAYS};"
                             " the other stores get half as many)")
    parser.add_argument("--shoppers", type=int, default=DEMO_SHOPPERS, metavar="N",
                        help=f"loyalty-card shoppers per store (default {DEMO_SHOPPERS})")
    parser.add_argument("--seed", type=int, default=0, help="demo data seed (default 0)")
    parser.add_argument("--duration", type=float, default=None, metavar="S",
                        help="stop after S seconds of live traffic (default: until Ctrl-C)")
    parser.add_argument("--local-broker", choices=LOCAL_BROKERS, default="auto",
                        help="broker to start when none is configured: auto (mosquitto if "
                             "installed, else amqtt), mosquitto, or amqtt (embedded, MQTT 3.1.1)")
    parser.add_argument("--stores", type=int, default=None, metavar="N",
                        help=f"stores to run, each with its agent, simulator and HTTP port "
                             f"(--port, then the next ones; default {DEMO_STORES})")
    parser.add_argument("--no-cloud", action="store_true",
                        help="one store as an island: no local cloud, no uplink, no lake")


def run_demo(settings: Settings, args: argparse.Namespace) -> int:
    stores = getattr(args, "stores", None)
    if stores is not None and stores < 1:
        print("edge-agent demo: --stores must be at least 1")
        return EXIT_USAGE
    if getattr(args, "no_cloud", False):
        if stores not in (None, 1):
            print("edge-agent demo: --stores needs the cloud; drop --no-cloud")
            return EXIT_USAGE
        return run_island(settings, args)
    if find_mosquitto() is None:
        print("edge-agent demo: mosquitto is not installed, so the local cloud (its IoT Core"
              " stand-in) cannot run: one store as an island (apt-get install mosquitto)",
              flush=True)
        return run_island(settings, args)
    from edge_agent.demo.fleet import run_fleet

    return run_fleet(settings, args, stores or DEMO_STORES)


def run_island(settings: Settings, args: argparse.Namespace) -> int:
    """One store, no cloud: the demo as it was before the store–cloud link."""
    stop = threading.Event()
    with contextlib.ExitStack() as cleanup, stop_on_signals(stop):
        broker_kind, broker = "configured", None
        if not settings.broker:
            broker, broker_kind = start_local_broker(getattr(args, "local_broker", "auto"),
                                                     [settings.store_id])
            cleanup.callback(broker.close)
        settings = demo_settings(settings, broker)
        try:
            simulation = make_simulation(settings, args)
        except SimulatorConfigError as exc:
            print(f"edge-agent demo: {exc}")
            return EXIT_USAGE
        if (message := port_in_use(settings)) is not None:
            print(message)
            return EXIT_USAGE
        try:
            accounts = broker_accounts(broker, settings.store_id)
            store = open_store(settings, simulation, cleanup,
                               accounts.directory if accounts else None)
        except PublisherError as exc:
            print(f"edge-agent demo: {exc}")
            return EXIT_FAILURE
        lines = [f"edge-agent demo — store {settings.store_id}",
                 f"  MQTT broker : {settings.broker}  [{broker_kind}]",
                 *store.page_lines(),
                 "  Ctrl-C to stop."]
        print("\n".join(lines), flush=True)
        result = store.simulate(stop)
        print(f"demo {settings.store_id}: {result.summary() or 'nothing published'}")
    return EXIT_OK
