"""`edge-agent demo`: a whole store on one laptop with one command.

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
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edge_agent.broker import EmbeddedBroker, MosquittoBroker, find_mosquitto, port_is_free
from edge_agent.demo.seed import seed_demo_data
from edge_agent.demo.shoppers import Shopper
from edge_agent.settings import ApiKey, Settings
from edge_agent.simulator.cli import stop_on_signals
from edge_agent.simulator.publisher import PublisherError
from edge_agent.simulator.simulation import (
    Simulation,
    SimulationConfig,
    SimulatorConfigError,
    connect_publisher,
)
from edge_agent.storage.database import open_database

if TYPE_CHECKING:
    from edge_agent.api.server import BackgroundServer

logger = logging.getLogger(__name__)

DEMO_DB_PATH = Path("demo-data/edge.db")
# Beside the demo database: the models it trains, the bundle, and the key that signs it.
DEMO_MODELS, DEMO_BUNDLE, DEMO_KEYS = "models", "bundle", "keys"
# How long to wait for the agent to store the back-filled history before training on it.
HISTORY_COMMIT_TIMEOUT_S = 120.0
# A pace a laptop shows comfortably while the agent, the broker and a browser share it.
DEMO_RATE = 50.0
# Four weeks cover every weekly habit several times and most monthly ones once or twice.
DEMO_HISTORY_DAYS = 28
DEMO_SHOPPERS = 500
EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2
LOCAL_BROKERS = ("auto", "mosquitto", "amqtt")
# The agent connects in the background; history published before it has subscribed would
# never reach it, so the demo waits this long for the subscription.
AGENT_SUBSCRIBE_TIMEOUT_S = 15.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The demo's own flags (the lead's CLI adds --store-id, --broker, --db, --config)."""
    parser.add_argument("--rate", type=float, default=DEMO_RATE, metavar="N",
                        help=f"simulated events per second (default {DEMO_RATE:g})")
    parser.add_argument("--history-days", type=int, default=DEMO_HISTORY_DAYS, metavar="D",
                        help=f"days of past purchases to back-fill (default {DEMO_HISTORY_DAYS})")
    parser.add_argument("--shoppers", type=int, default=DEMO_SHOPPERS, metavar="N",
                        help=f"loyalty-card shoppers (default {DEMO_SHOPPERS})")
    parser.add_argument("--seed", type=int, default=0, help="demo data seed (default 0)")
    parser.add_argument("--duration", type=float, default=None, metavar="S",
                        help="stop after S seconds of live traffic (default: until Ctrl-C)")
    parser.add_argument("--local-broker", choices=LOCAL_BROKERS, default="auto",
                        help="broker to start when none is configured: auto (mosquitto if "
                             "installed, else amqtt), mosquitto, or amqtt (embedded, MQTT 3.1.1)")


def _demo_settings(settings: Settings, broker: MosquittoBroker | EmbeddedBroker | None,
                   ) -> Settings:
    update: dict[str, Any] = {}
    if "db" not in settings.model_fields_set:  # no --db / EDGE_DB / config file: demo default
        update["db"] = DEMO_DB_PATH
    if broker is not None:
        update["broker"] = broker.url
    if isinstance(broker, EmbeddedBroker):
        update["mqtt_protocol"] = "3.1.1"  # amqtt refuses MQTT 5
    demo_dir = Path(update.get("db", settings.db)).parent
    if settings.model_public_key is None:
        # The demo signs the bundles it trains from its own history with a key of its own.
        update["model_public_key"] = demo_public_key(demo_dir)
        if (demo_dir / DEMO_BUNDLE).exists():
            update["model_bundle"] = demo_dir / DEMO_BUNDLE
    if not settings.api_keys:  # a laptop demo: well-known keys, printed in the banner
        update["api_keys"] = [ApiKey(name=f"demo-{role}", role=role, key=f"demo-{role}-key-0000")
                              for role in ("display", "kiosk", "staff", "admin")]
    return settings.model_copy(update=update)


def demo_public_key(demo_dir: Path) -> Path:
    from models.bundle import generate_keypair
    from models.bundle.keys import PUBLIC_KEY_FILE

    keys = demo_dir / DEMO_KEYS
    if not (keys / PUBLIC_KEY_FILE).exists():
        generate_keypair(keys)
    return keys / PUBLIC_KEY_FILE


def train_in_background(server: BackgroundServer, settings: Settings, published: int) -> None:
    """Once the agent has stored the history, train on it, sign, and hot-load the bundle."""
    from edge_agent.store_training import sign_store_bundle, train_store_models

    def work() -> None:
        try:
            agent = server.agent
            deadline = time.monotonic() + HISTORY_COMMIT_TIMEOUT_S
            while agent.stats().stored_total < published and time.monotonic() < deadline:
                time.sleep(0.5)
            demo_dir = settings.db.parent
            models = train_store_models(settings.db, demo_dir / DEMO_MODELS)
            bundle, _ = sign_store_bundle(models, demo_dir / DEMO_KEYS, demo_dir / DEMO_BUNDLE,
                                          version=f"demo-{int(time.time())}")
            loaded = server.app.state.serving.models.load(bundle)
            print(f"models {loaded.version} trained on this store's history and loaded "
                  f"({', '.join(loaded.model_names)})", flush=True)
        except Exception:
            logger.exception("training the demo's models failed; serving without them")

    if server.app.state.serving.models.current is None:
        print("training models on this store's history in the background ...", flush=True)
        threading.Thread(target=work, name="demo-training", daemon=True).start()


def start_local_broker(kind: str = "auto") -> tuple[MosquittoBroker | EmbeddedBroker, str]:
    """Mosquitto if installed (MQTT 5, like the agent), else the embedded amqtt broker."""
    if kind == "mosquitto" or (kind == "auto" and find_mosquitto()):
        broker: MosquittoBroker | EmbeddedBroker = MosquittoBroker().start()
        return broker, "mosquitto, local subprocess"
    if kind == "auto":
        logger.warning("mosquitto is not installed: using the embedded amqtt broker "
                       "(MQTT 3.1.1 only, sessions in memory)")
    return EmbeddedBroker().start(), "amqtt, embedded, MQTT 3.1.1"


def start_agent(settings: Settings) -> BackgroundServer:
    """The agent with its HTTP service; its lifespan starts ingestion."""
    from edge_agent.api.app import create_app
    from edge_agent.api.server import BackgroundServer

    server = BackgroundServer(create_app(settings), settings.http_host, settings.port).start()
    if not server.agent.ingestion.wait_connected(AGENT_SUBSCRIBE_TIMEOUT_S):
        logger.warning("the agent has not subscribed after %.0f s; early events may be missed",
                       AGENT_SUBSCRIBE_TIMEOUT_S)
    return server


def run_demo(settings: Settings, args: argparse.Namespace) -> int:
    stop = threading.Event()
    with contextlib.ExitStack() as cleanup, stop_on_signals(stop):
        broker_kind, broker = "configured", None
        if not settings.broker:
            broker, broker_kind = start_local_broker(getattr(args, "local_broker", "auto"))
            cleanup.callback(broker.close)
        settings = _demo_settings(settings, broker)
        try:
            config = SimulationConfig(
                store_id=settings.store_id,
                rate=getattr(args, "rate", DEMO_RATE) or None,
                duration=getattr(args, "duration", None),
                seed=getattr(args, "seed", 0),
                shoppers=getattr(args, "shoppers", DEMO_SHOPPERS),
                history_days=getattr(args, "history_days", DEMO_HISTORY_DAYS),
            )
            simulation = Simulation(config)
        except SimulatorConfigError as exc:
            print(f"edge-agent demo: {exc}")
            return EXIT_USAGE
        if not port_is_free(settings.http_host, settings.port):
            print(f"edge-agent demo: port (EDGE_PORT): {settings.http_host}:{settings.port} is"
                  " in use; choose another with --port or EDGE_PORT")
            return EXIT_USAGE
        db = open_database(settings.db)
        try:
            seeded = seed_demo_data(db, simulation.catalog, simulation.shoppers)
        finally:
            db.close()
        server = start_agent(settings)
        cleanup.callback(server.stop)
        try:
            publisher = connect_publisher(settings, client_id=f"demo-simulator-{settings.store_id}")
        except PublisherError as exc:
            print(f"edge-agent demo: {exc}")
            return EXIT_FAILURE
        cleanup.callback(publisher.close)
        _print_banner(settings, broker_kind, seeded.products, seeded.customers,
                      simulation.shoppers)
        result = simulation.run(publisher, stop, after_history=lambda published:
                                train_in_background(server, settings, published))
        print(f"demo {settings.store_id}: {result.summary() or 'nothing published'}")
    return EXIT_OK


def _print_banner(settings: Settings, broker_kind: str, products: int, customers: int,
                  shoppers: Sequence[Shopper]) -> None:
    base = f"http://{settings.http_host}:{settings.port}"
    with_consent = next((s for s in shoppers if s.consent_personalization), None)
    without = next((s for s in shoppers if not s.consent_personalization), None)
    lines = [
        f"edge-agent demo — store {settings.store_id}",
        f"  MQTT broker : {settings.broker}  [{broker_kind}]",
        f"  watch       : mosquitto_sub -L '{settings.broker}/stores/{settings.store_id}/#' -v",
        f"  database    : {settings.db.resolve()}  ({products} products, {customers} customers)",
        f"  agent       : ingesting into the database (MQTT {settings.mqtt_protocol})",
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
        "  Ctrl-C to stop.",
    ]
    print("\n".join(lines), flush=True)


def _key_for(settings: Settings, role: str) -> str:
    return next((k.key.get_secret_value() for k in settings.api_keys if k.role == role), "")
