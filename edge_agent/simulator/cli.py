"""`edge-agent simulate`: the simulator's own flags and its entry point.

The common flags (`--store-id`, `--broker`, `--db`, `--config`) belong to the main CLI and
arrive here already folded into `Settings`.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

from edge_agent.settings import Settings
from edge_agent.simulator.publisher import PublisherError
from edge_agent.simulator.replay import ReplayUnavailable
from edge_agent.simulator.simulation import (
    DEFAULT_RATE,
    DEFAULT_SHOPPERS,
    REPLAY_DATASETS,
    Simulation,
    SimulationConfig,
    SimulatorConfigError,
    connect_publisher,
)

logger = logging.getLogger(__name__)

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2
# Below this share of the requested rate the summary says the target was not reached
# (judged only on runs of a second or more: shorter ones are all start-up).
RATE_SHORTFALL = 0.9


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rate", type=float, default=DEFAULT_RATE, metavar="N",
                        help=f"events per second, all types together (default {DEFAULT_RATE:g}; "
                             "0 = as fast as the broker takes them)")
    parser.add_argument("--duration", type=float, default=None, metavar="S",
                        help="seconds of live traffic (default: until Ctrl-C)")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the demo catalog, shoppers and traffic (default 0)")
    parser.add_argument("--shoppers", type=int, default=DEFAULT_SHOPPERS, metavar="N",
                        help=f"loyalty-card shoppers (default {DEFAULT_SHOPPERS})")
    parser.add_argument("--history-days", type=int, default=0, metavar="D",
                        help="first publish D days of past purchase history, as fast as the "
                             "broker takes it")
    parser.add_argument("--replay", choices=REPLAY_DATASETS, default=None,
                        help="replay a real dataset as POS traffic instead of simulating "
                             "(needs the 'completejourney' extra)")
    parser.add_argument("--replay-keep-timestamps", action="store_true",
                        help="keep the dataset's own dates instead of shifting them to end now")
    parser.add_argument("--broker-accounts", type=Path, default=None, metavar="DIR",
                        help="publish as the store's devices do: one login per device class,"
                             " from the credentials.json `edge-agent broker-config` wrote")
    parser.add_argument("--replay-limit", type=int, default=None, metavar="N",
                        help="replay only the first N baskets")


def config_from_args(settings: Settings, args: argparse.Namespace) -> SimulationConfig:
    return SimulationConfig(
        store_id=settings.store_id,
        rate=args.rate or None,
        duration=args.duration,
        seed=args.seed,
        shoppers=args.shoppers,
        history_days=args.history_days,
        replay=args.replay,
        replay_keep_timestamps=args.replay_keep_timestamps,
        replay_limit=args.replay_limit,
    )


@contextlib.contextmanager
def stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """Ctrl-C and SIGTERM set `stop` (main thread only; elsewhere the caller stops us)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handle(signum: int, frame: object) -> None:
        logger.info("signal %d: stopping", signum)
        stop.set()

    previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def run(settings: Settings, args: argparse.Namespace) -> int:
    try:
        config = config_from_args(settings, args)
        simulation = Simulation(config)
        publisher = connect_publisher(settings, accounts_dir=args.broker_accounts)
    except (SimulatorConfigError, ValueError) as exc:
        print(f"edge-agent simulate: {exc}")
        return EXIT_USAGE
    except PublisherError as exc:
        print(f"edge-agent simulate: {exc}")
        return EXIT_FAILURE
    stop = threading.Event()
    try:
        with stop_on_signals(stop):
            result = simulation.run(publisher, stop)
    except ReplayUnavailable as exc:
        print(f"edge-agent simulate: {exc}")
        return EXIT_FAILURE
    finally:
        publisher.close()
    print(f"simulator {settings.store_id}: {result.summary() or 'nothing published'}")
    paced = result.phases.get("live") or result.phases.get("replay")
    if config.rate and paced and paced.elapsed_s >= 1 and paced.rate < config.rate * RATE_SHORTFALL:
        print(f"  note: {config.rate:g}/s requested; the broker or this machine kept up with "
              f"{paced.rate:.0f}/s")
    return EXIT_OK
