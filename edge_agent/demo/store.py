"""One store of the demo, running: its agent (ingestion, uplink when it has credentials,
HTTP), its simulator's connection, the training of its models once its history is in, and
the lines that say where to look at it."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from edge_agent.demo.seed import seed_demo_data
from edge_agent.demo.shoppers import Shopper
from edge_agent.settings import Settings
from edge_agent.simulator.accounts import Publisher
from edge_agent.simulator.simulation import Simulation, SimulationResult, connect_publisher
from edge_agent.storage.database import open_database

if TYPE_CHECKING:
    from edge_agent.api.server import BackgroundServer

logger = logging.getLogger(__name__)

# Beside the demo database: the models it trains, the bundle, and the key that signs it.
DEMO_MODELS, DEMO_BUNDLE, DEMO_KEYS = "models", "bundle", "keys"
# How long to wait for the agent to store the back-filled history before training on it.
HISTORY_COMMIT_TIMEOUT_S = 120.0
# The agent connects in the background; history published before it has subscribed would
# never reach it, so the demo waits this long for the subscription.
AGENT_SUBSCRIBE_TIMEOUT_S = 15.0


def start_agent(settings: Settings) -> BackgroundServer:
    """The agent with its HTTP service; its lifespan starts ingestion."""
    from edge_agent.api.app import create_app
    from edge_agent.api.server import BackgroundServer

    server = BackgroundServer(create_app(settings), settings.http_host, settings.port,
                              settings).start()
    if not server.agent.ingestion.wait_connected(AGENT_SUBSCRIBE_TIMEOUT_S):
        logger.warning("the agent has not subscribed after %.0f s; early events may be missed",
                       AGENT_SUBSCRIBE_TIMEOUT_S)
    return server


def train_in_background(server: BackgroundServer, settings: Settings, published: int,
                        after: threading.Event | None = None,
                        done: threading.Event | None = None,
                        stop: threading.Event | None = None) -> None:
    """Once the agent has stored the history, train on it, sign, and hot-load the bundle.
    With several stores, each trains `after` the one before has (`done` is set either way):
    training takes a core for a minute or so, and two at once on a 2-core machine would
    starve ingestion, the uplinks and the pages, and delay the first store's models.
    A demo stopping (`stop`) before training began gives it up quietly."""
    from edge_agent.store_training import sign_store_bundle, train_store_models
    from models.bundle.version import time_version

    stop = stop or threading.Event()

    def history_stored() -> bool:
        # History published again by a later run comes back as duplicates.
        stats = server.agent.stats()
        return stats.stored_total + stats.duplicates >= published

    def work() -> None:
        try:
            deadline = time.monotonic() + HISTORY_COMMIT_TIMEOUT_S
            while not history_stored() and time.monotonic() < deadline:
                if stop.wait(0.5):
                    return
            while after is not None and not after.wait(0.5):
                if stop.is_set():
                    return
            if stop.is_set():
                return
            demo_dir = settings.db.parent
            models = train_store_models(settings.db, demo_dir / DEMO_MODELS)
            # Signed with the key pair the store trusts (a fleet's: the chain's own).
            keys = (settings.model_public_key.parent if settings.model_public_key
                    else demo_dir / DEMO_KEYS)
            bundle, _ = sign_store_bundle(models, keys, demo_dir / DEMO_BUNDLE,
                                          version=time_version())
            loaded = server.app.state.serving.models.load(bundle)
            print(f"models {loaded.version} trained on {settings.store_id}'s history and loaded "
                  f"({', '.join(loaded.model_names)})", flush=True)
        except Exception as exc:
            # One line: a short back-fill (a few days, few shoppers) is too little to train on,
            # and the store serves its favourites meanwhile. The details go to debug.
            logger.warning("training %s's models failed (%s: %s); serving without them",
                           settings.store_id, type(exc).__name__, exc)
            logger.debug("training the demo's models failed", exc_info=True)
        finally:
            if done is not None:
                done.set()

    if server.app.state.serving.models.current is None:
        print(f"training models on {settings.store_id}'s history in the background ...",
              flush=True)
        threading.Thread(target=work, name=f"demo-training-{settings.store_id}",
                         daemon=True).start()
    elif done is not None:
        done.set()  # a bundle from an earlier run: nothing to wait for


@dataclass
class DemoStore:
    """One running store of the demo: its agent (with HTTP) and its simulator's client."""

    settings: Settings
    simulation: Simulation
    server: BackgroundServer
    publisher: Publisher
    products: int
    customers: int
    # Set once this store's training is over; the next store's waits for `train_after`.
    trained: threading.Event = field(default_factory=threading.Event)
    train_after: threading.Event | None = None

    def simulate(self, stop: threading.Event) -> SimulationResult:
        """History, training in the background, then live traffic until `stop`."""
        return self.simulation.run(self.publisher, stop, after_history=lambda published:
                                   train_in_background(self.server, self.settings, published,
                                                       self.train_after, self.trained, stop))

    def page_lines(self, agent_note: str = "") -> list[str]:
        return store_lines(self.settings, self.products, self.customers,
                           self.simulation.shoppers, agent_note)


def open_store(settings: Settings, simulation: Simulation, cleanup: contextlib.ExitStack,
               accounts_dir: Path | None = None) -> DemoStore:
    """Seed the store's database, start its agent and connect its simulator; `cleanup` stops
    them (PublisherError if the simulator cannot reach the broker). With `accounts_dir` the
    simulator logs in per device class, as the store's devices do."""
    db = open_database(settings.db)
    try:
        seeded = seed_demo_data(db, simulation.catalog, simulation.shoppers)
    finally:
        db.close()
    server = start_agent(settings)
    cleanup.callback(server.stop)
    publisher = connect_publisher(settings, client_id=f"demo-simulator-{settings.store_id}",
                                  accounts_dir=accounts_dir)
    cleanup.callback(publisher.close)
    return DemoStore(settings, simulation, server, publisher, seeded.products, seeded.customers)


def _login(settings: Settings) -> str:
    """mosquitto_sub's login flags: the agent's read-only account, on a broker with accounts."""
    if not settings.mqtt_username or settings.mqtt_password is None:
        return ""
    return f" -u {settings.mqtt_username} -P {settings.mqtt_password.get_secret_value()}"


def store_lines(settings: Settings, products: int, customers: int,
                shoppers: Sequence[Shopper], agent_note: str = "") -> list[str]:
    """Where to look at one store: its traffic, database, pages with their keys, and a
    loyalty number to try with and without consent."""
    base = f"http://{settings.http_host}:{settings.port}"
    with_consent = next((s for s in shoppers if s.consent_personalization), None)
    without = next((s for s in shoppers if not s.consent_personalization), None)
    lines = [
        f"  watch       : mosquitto_sub{_login(settings)} -L"
        f" '{settings.broker}/stores/{settings.store_id}/#' -v",
        f"  database    : {settings.db.resolve()}  ({products} products, {customers} customers)",
        f"  agent       : ingesting into the database (MQTT {settings.mqtt_protocol}){agent_note}",
        f"  kiosk       : {base}/ui/kiosk.html?key={_key_for(settings, 'kiosk')}",
        f"  display     : {base}/ui/display.html?key={_key_for(settings, 'display')}",
        f"  staff       : {base}/ui/staff.html?key={_key_for(settings, 'staff')}",
    ]
    if with_consent is not None:
        lines.append(f"  loyalty no. : {with_consent.loyalty_number} (consents: a personal list,"
                     " suggestions and route)")
    if without is not None:
        lines.append(f"  loyalty no. : {without.loyalty_number} (no consent: the store's"
                     " favourites only)")
    lines += [
        f"  HTTP API    : {base}/docs",
        "  API keys    : " + ", ".join(f"{k.role}={k.key.get_secret_value()}"
                                       for k in settings.api_keys),
        f"  try         : curl -H 'X-API-Key: {_key_for(settings, 'staff')}' "
        f"{base}/v1/staff/restock-alerts",
    ]
    return lines


def _key_for(settings: Settings, role: str) -> str:
    return next((k.key.get_secret_value() for k in settings.api_keys if k.role == role), "")
