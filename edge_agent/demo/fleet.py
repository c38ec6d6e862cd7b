"""`edge-agent demo` with the cloud: N stores on one machine, each with its agent (its own
database under `<demo dir>/<store>/`, its own HTTP port) and its own simulator, uplinking
over mutual TLS to the local IoT Core stand-in, and a lake worker writing every store's
events to the local S3, with a line of lake progress every few seconds.

The stores share one store broker: topics carry the store id (`stores/{store}/...`) and each
agent subscribes to its own, so one Mosquitto is enough and saves a process per store.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import re
import threading
import time
from collections import Counter
from pathlib import Path

from edge_agent.demo.cloud import DemoCloud, start_cloud
from edge_agent.demo.common import (
    DEMO_DB_PATH,
    DEMO_HISTORY_DAYS,
    EXIT_FAILURE,
    EXIT_OK,
    EXIT_USAGE,
    broker_accounts,
    demo_public_key,
    demo_settings,
    make_simulation,
    port_in_use,
    start_local_broker,
)
from edge_agent.demo.release import release_when_trained
from edge_agent.demo.store import DemoStore, open_store
from edge_agent.settings import Settings
from edge_agent.simulator.cli import stop_on_signals
from edge_agent.simulator.publisher import PublisherError
from edge_agent.simulator.simulation import Simulation, SimulationResult, SimulatorConfigError

logger = logging.getLogger(__name__)

CLOUD_DIR, FLEET_DIR = "cloud", "fleet"  # beside the stores' directories
LAKE_PROGRESS_EVERY_S = 10.0
# The stores ask for release jobs this often besides being notified (a demo need not wait).
RELEASE_POLL_S = 5.0
SIMULATOR_JOIN_TIMEOUT_S = 30.0


def store_ids(first: str, count: int) -> list[str]:
    """store-001 -> store-001, store-002, ...; an id without a number gets -2, -3, ..."""
    numbered = re.fullmatch(r"(.*?)(\d+)", first)
    if numbered is None:
        return [first] + [f"{first}-{n}" for n in range(2, count + 1)]
    prefix, digits = numbered.groups()
    return [f"{prefix}{int(digits) + n:0{len(digits)}d}" for n in range(count)]


def plan_stores(settings: Settings, count: int) -> tuple[Path, list[Settings]]:
    """The demo directory and each store's settings (broker and credentials come later).
    Without --db every store's database is `demo-data/<store>/edge.db`; with --db that is
    the first store's, and the others go beside it."""
    explicit_db = "db" in settings.model_fields_set
    root = (settings.db if explicit_db else DEMO_DB_PATH).parent
    planned = []
    for n, store in enumerate(store_ids(settings.store_id, count)):
        db = settings.db if explicit_db and n == 0 else root / store / "edge.db"
        db.parent.mkdir(parents=True, exist_ok=True)
        planned.append(settings.model_copy(update={
            "store_id": store, "db": db, "port": settings.port + n}))
    return root, planned


def history_days_for(n: int, args: argparse.Namespace) -> int:
    """The first store gets the whole back-fill; the others half, which keeps start-up (the
    back-fill and the training after it, both CPU-bound) short on a 2-core machine."""
    days: int = getattr(args, "history_days", DEMO_HISTORY_DAYS)
    return days if n == 0 else (days + 1) // 2


def run_fleet(settings: Settings, args: argparse.Namespace, count: int) -> int:
    stop = threading.Event()
    with contextlib.ExitStack() as cleanup, stop_on_signals(stop):
        root, planned = plan_stores(settings, count)
        for store_settings in planned:  # one line before anything starts
            if (message := port_in_use(store_settings)) is not None:
                print(message)
                return EXIT_USAGE
        try:
            simulations = _simulations(planned, args)
        except SimulatorConfigError as exc:
            print(f"edge-agent demo: {exc}")
            return EXIT_USAGE
        broker_kind, broker = "configured", None
        if not settings.broker:
            broker, broker_kind = start_local_broker(getattr(args, "local_broker", "auto"),
                                                     [s.store_id for s in planned])
            cleanup.callback(broker.close)
        try:
            cloud = start_cloud(root / CLOUD_DIR, root / FLEET_DIR,
                                [s.store_id for s in planned], cleanup)
        except Exception as exc:  # the stand-ins or provisioning: one line, no traceback
            logger.debug("the local cloud did not start", exc_info=True)
            print(f"edge-agent demo: the local cloud did not start: {exc}")
            return EXIT_FAILURE
        stores = []
        fleet_key = settings.model_public_key or demo_public_key(root)  # the chain's key
        for store_settings, simulation in zip(planned, simulations, strict=True):
            if stop.is_set():  # Ctrl-C while starting: undo what is up, say so
                print("edge-agent demo: stopped while starting")
                return EXIT_OK
            store_settings = demo_settings(
                store_settings, broker, db=store_settings.db,
                cloud_credentials=cloud.credentials[store_settings.store_id],
                model_public_key=fleet_key, model_update_poll_s=RELEASE_POLL_S)
            try:
                accounts = broker_accounts(broker, store_settings.store_id)
                store = open_store(store_settings, simulation, cleanup,
                                   accounts.directory if accounts else None)
            except PublisherError as exc:
                print(f"edge-agent demo: {exc}")
                return EXIT_FAILURE
            if stores:  # one store trains at a time, in order
                store.train_after = stores[-1].trained
            stores.append(store)
        _print_banner(stores, cloud, f"{stores[0].settings.broker}  [{broker_kind}]")
        simulators = Simulators(stores, stop)
        # Registered last, so run first: nothing they publish to goes before they stop.
        cleanup.callback(simulators.join)
        release_when_trained(cloud, stores, root, stop)
        _watch_lake(cloud, stores, stop, simulators)
        simulators.join()
        for store in stores:
            result = simulators.results.get(store.settings.store_id)
            summary = result.summary() if result is not None else ""
            print(f"demo {store.settings.store_id}: {summary or 'nothing published'}")
        _print_progress(cloud, Counter(), final=True)
    return EXIT_OK


def _simulations(planned: list[Settings], args: argparse.Namespace) -> list[Simulation]:
    """One simulator per store: one catalog for the chain, each store its own shoppers."""
    seed: int = getattr(args, "seed", 0)
    first = make_simulation(planned[0], args, history_days=history_days_for(0, args))
    return [first] + [make_simulation(s, args, seed=seed + n, catalog=first.catalog,
                                      history_days=history_days_for(n, args))
                      for n, s in enumerate(planned[1:], start=1)]


def _print_banner(stores: list[DemoStore], cloud: DemoCloud, broker: str) -> None:
    several = len(stores) > 1
    lines = [f"edge-agent demo — {len(stores)} store{'s' if several else ''} and"
             f" {'their' if several else 'its'} cloud on this machine",
             f"  MQTT broker : {broker}  (the stores' tills and sensors; topics carry the"
             " store id)",
             *cloud.lines()]
    for store in stores:
        lines += [f"store {store.settings.store_id}",
                  *store.page_lines(f", uplink to IoT Core with"
                                    f" {store.settings.cloud_credentials}")]
    lines.append(f"lake progress every {LAKE_PROGRESS_EVERY_S:g} s.  Ctrl-C to stop.")
    print("\n".join(lines), flush=True)


class Simulators:
    """Each store's simulator in a thread of its own."""

    def __init__(self, stores: list[DemoStore], stop: threading.Event) -> None:
        self._stop = stop
        self.results: dict[str, SimulationResult] = {}
        self._threads = [threading.Thread(target=self._simulate, args=(store,), daemon=True,
                                          name=f"demo-simulator-{store.settings.store_id}")
                         for store in stores]
        for thread in self._threads:
            thread.start()

    def _simulate(self, store: DemoStore) -> None:
        try:
            self.results[store.settings.store_id] = store.simulate(self._stop)
        except Exception:
            logger.exception("the simulator of %s stopped", store.settings.store_id)

    def done(self) -> bool:
        """Every simulator has finished (a --duration run, or a failure)."""
        return not any(thread.is_alive() for thread in self._threads)

    def join(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(SIMULATOR_JOIN_TIMEOUT_S)


def _watch_lake(cloud: DemoCloud, stores: list[DemoStore], stop: threading.Event,
                simulators: Simulators) -> None:
    """Until Ctrl-C (or every simulator is done): one line of lake progress every so often."""
    previous: Counter[str] = Counter({s.settings.store_id: 0 for s in stores})
    next_at = time.monotonic() + LAKE_PROGRESS_EVERY_S
    while not stop.wait(0.5) and not simulators.done():
        if time.monotonic() >= next_at:
            previous = _print_progress(cloud, previous)
            next_at = time.monotonic() + LAKE_PROGRESS_EVERY_S


def _print_progress(cloud: DemoCloud, previous: Counter[str], final: bool = False,
                    ) -> Counter[str]:
    """One line: each store's events written to the lake so far (and since the last line)."""
    counts = cloud.lake.counts()
    parts = [f"{store} {counts[store]} events"
             + ("" if final else f" (+{counts[store] - previous[store]})")
             for store in sorted(set(previous) | set(counts))]
    stats = cloud.worker.stats
    print(f"lake {time.strftime('%H:%M:%S')}: " + ", ".join(parts or ["empty"])
          + f"; {stats.batches} batches, {stats.dead_letters} dead letters", flush=True)
    return counts
