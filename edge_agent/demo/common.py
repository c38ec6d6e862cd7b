"""What the island demo and the fleet demo share: their defaults, the settings a demo store
runs with, its local broker, its simulator, and the busy-port message."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import SecretStr

from edge_agent.broker import (
    MosquittoBroker,
    find_mosquitto,
    port_is_free,
    start_store_mosquitto,
)
from edge_agent.broker_auth import AGENT_CLASS, StoreBrokerConfig
from edge_agent.demo.store import DEMO_BUNDLE, DEMO_KEYS
from edge_agent.settings import ApiKey, Settings
from edge_agent.simulator.simulation import Simulation, SimulationConfig

if TYPE_CHECKING:
    from edge_agent.demo.catalog import Product
    from edge_agent.embedded_broker import EmbeddedBroker

logger = logging.getLogger(__name__)

DEMO_DB_PATH = Path("demo-data/edge.db")
# A pace a laptop shows comfortably while the agent, the broker and a browser share it.
DEMO_RATE = 50.0
# Four weeks cover every weekly habit several times and most monthly ones once or twice.
DEMO_HISTORY_DAYS = 28
DEMO_SHOPPERS = 500
DEMO_STORES = 2
EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2
LOCAL_BROKERS = ("auto", "mosquitto", "amqtt")


def demo_settings(settings: Settings, broker: MosquittoBroker | EmbeddedBroker | None,
                  **update: Any) -> Settings:
    """The demo's defaults on top of what the user set; `update` (db, port, store id, cloud
    credentials of one store in a fleet) wins over both."""
    if "db" not in settings.model_fields_set and "db" not in update:
        update["db"] = DEMO_DB_PATH  # no --db / EDGE_DB / config file: demo default
    if broker is not None:
        update["broker"] = broker.url
    if broker is not None and broker.mqtt_protocol != "5":
        update["mqtt_protocol"] = broker.mqtt_protocol  # amqtt refuses MQTT 5
    accounts = broker_accounts(broker, update.get("store_id", settings.store_id))
    if accounts is not None:  # the agent logs in with its own, subscribe-only account
        agent = accounts.account(AGENT_CLASS)
        # model_copy does not validate: the password must already be a SecretStr.
        update["mqtt_username"] = agent.username
        update["mqtt_password"] = SecretStr(agent.password)
    demo_dir = Path(update.get("db", settings.db)).parent
    if settings.model_public_key is None and "model_public_key" not in update:
        # The demo signs the bundles it trains from its own history with a key of its own
        # (in a fleet, the chain's key: `update`).
        update["model_public_key"] = demo_public_key(demo_dir)
        if (demo_dir / DEMO_BUNDLE).exists():
            update["model_bundle"] = demo_dir / DEMO_BUNDLE
    if not settings.api_keys:  # a laptop demo: well-known keys, printed in the banner
        update["api_keys"] = [ApiKey(name=f"demo-{role}", role=role, key=f"demo-{role}-key-0000")
                              for role in ("display", "kiosk", "staff", "admin")]
    return settings.model_copy(update=update)


def broker_accounts(broker: MosquittoBroker | EmbeddedBroker | None,
                    store_id: str) -> StoreBrokerConfig | None:
    """The store's accounts on a local broker set up with them, else None."""
    return broker.accounts.get(store_id) if isinstance(broker, MosquittoBroker) else None


def demo_public_key(demo_dir: Path) -> Path:
    from models.bundle import generate_keypair
    from models.bundle.keys import PUBLIC_KEY_FILE

    keys = demo_dir / DEMO_KEYS
    if not (keys / PUBLIC_KEY_FILE).exists():
        generate_keypair(keys)
    return keys / PUBLIC_KEY_FILE


def start_local_broker(kind: str = "auto", store_ids: Sequence[str] = ()
                       ) -> tuple[MosquittoBroker | EmbeddedBroker, str]:
    """Mosquitto if installed (MQTT 5, like the agent), else the embedded amqtt broker.
    Mosquitto is set up as a store's is (docs/operations.md): an account per device class
    of each of `store_ids` and an ACL; amqtt, the fallback, stays open to anyone."""
    if kind == "mosquitto" or (kind == "auto" and find_mosquitto()):
        if store_ids:
            return (start_store_mosquitto(store_ids),
                    "mosquitto, local subprocess, an account per device class")
        broker: MosquittoBroker | EmbeddedBroker = MosquittoBroker().start()
        return broker, "mosquitto, local subprocess"
    if kind == "auto":
        logger.warning("mosquitto is not installed: using the embedded amqtt broker "
                       "(MQTT 3.1.1 only, sessions in memory)")
    from edge_agent.embedded_broker import EmbeddedBroker  # the fallback: amqtt, only here

    return EmbeddedBroker().start(), "amqtt, embedded, MQTT 3.1.1"


def make_simulation(settings: Settings, args: argparse.Namespace, *, seed: int | None = None,
                    history_days: int | None = None,
                    catalog: list[Product] | None = None) -> Simulation:
    """The store's simulator from the demo's flags (SimulatorConfigError if they are bad)."""
    config = SimulationConfig(
        store_id=settings.store_id,
        rate=getattr(args, "rate", DEMO_RATE) or None,
        duration=getattr(args, "duration", None),
        seed=getattr(args, "seed", 0) if seed is None else seed,
        shoppers=getattr(args, "shoppers", DEMO_SHOPPERS),
        history_days=(getattr(args, "history_days", DEMO_HISTORY_DAYS)
                      if history_days is None else history_days),
    )
    return Simulation(config, catalog=catalog)


def port_in_use(settings: Settings) -> str | None:
    """The one line to print when the store's HTTP port is taken, else None."""
    if port_is_free(settings.http_host, settings.port):
        return None
    return (f"edge-agent demo: port (EDGE_PORT): {settings.http_host}:{settings.port} is"
            " in use; choose another with --port or EDGE_PORT")
