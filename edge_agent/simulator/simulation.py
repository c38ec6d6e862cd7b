"""One simulator run: optional history back-fill, then live traffic or a dataset replay."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from edge_agent.broker_auth import CREDENTIALS_FILE
from edge_agent.demo.catalog import DEFAULT_CATALOG_SIZE, Product, generate_catalog
from edge_agent.demo.shoppers import PantryState, Shopper, generate_shoppers
from edge_agent.settings import Settings, parse_broker_url
from edge_agent.simulator.accounts import DeviceClassPublishers, Publisher
from edge_agent.simulator.engine import PublishStats, publish_stream
from edge_agent.simulator.history import generate_history
from edge_agent.simulator.publisher import MqttPublisher
from edge_agent.simulator.replay import load_transactions, replay_transactions
from edge_agent.simulator.traffic import LiveTraffic

logger = logging.getLogger(__name__)

DEFAULT_RATE = 200.0
DEFAULT_SHOPPERS = 500
REPLAY_DATASETS = ("completejourney",)


class SimulatorConfigError(ValueError):
    """A simulator option is missing or out of range (reported before anything is sent)."""


@dataclass
class SimulationConfig:
    store_id: str
    rate: float | None = DEFAULT_RATE  # events/s; None or 0 = as fast as the broker takes it
    duration: float | None = None  # seconds of live traffic; None = until stopped
    seed: int = 0
    shoppers: int = DEFAULT_SHOPPERS
    catalog_size: int = DEFAULT_CATALOG_SIZE
    history_days: int = 0
    replay: str | None = None
    replay_keep_timestamps: bool = False
    replay_limit: int | None = None

    def check(self) -> None:
        if self.rate is not None and self.rate < 0:
            raise SimulatorConfigError("--rate must be positive (0 = as fast as possible)")
        if self.duration is not None and self.duration <= 0:
            raise SimulatorConfigError("--duration must be positive")
        if self.shoppers < 0 or self.history_days < 0:
            raise SimulatorConfigError("--shoppers and --history-days cannot be negative")
        if self.replay is not None and self.replay not in REPLAY_DATASETS:
            raise SimulatorConfigError(f"--replay must be one of {', '.join(REPLAY_DATASETS)}")


@dataclass
class SimulationResult:
    phases: dict[str, PublishStats] = field(default_factory=dict)

    def summary(self) -> str:
        return "; ".join(stats.summary(name) for name, stats in self.phases.items())


class Simulation:
    """Generates the demo store once (seeded) and publishes its phases through one client."""

    def __init__(self, config: SimulationConfig, *, catalog: list[Product] | None = None,
                 shoppers: list[Shopper] | None = None) -> None:
        config.check()
        self.config = config
        self.catalog = catalog if catalog is not None else generate_catalog(
            config.seed, config.catalog_size)
        self.shoppers = shoppers if shoppers is not None else generate_shoppers(
            self.catalog, config.shoppers, config.seed)
        # What each shopper last bought: history fills it, live traffic carries on from it.
        self.pantries: dict[str, PantryState] = {}

    def run(self, publisher: Publisher, stop: threading.Event | None = None,
            after_history: Callable[[int], None] | None = None) -> SimulationResult:
        """History (as fast as the broker takes it), then live traffic or a replay.
        `after_history(published)` runs between the two (the demo trains models there)."""
        stop = stop or threading.Event()
        cfg = self.config
        result = SimulationResult()
        if cfg.history_days and not stop.is_set():
            logger.info("publishing %d days of purchase history", cfg.history_days)
            history = generate_history(self.catalog, self.shoppers, store_id=cfg.store_id,
                                       days=cfg.history_days, seed=cfg.seed,
                                       pantries=self.pantries)
            result.phases["history"] = publish_stream(publisher, history, rate=None, stop=stop)
            if after_history is not None:
                after_history(result.phases["history"].total)
        if stop.is_set():
            return result
        if cfg.replay:
            logger.info("loading %s", cfg.replay)
            tx = load_transactions()  # before the clock starts: loading takes seconds
            logger.info("replaying %d line items", len(tx))
            events = replay_transactions(cfg.store_id, shift_to_now=not cfg.replay_keep_timestamps,
                                         limit=cfg.replay_limit, tx=tx)
            result.phases["replay"] = publish_stream(publisher, events, rate=cfg.rate or None,
                                                     duration=cfg.duration, stop=stop)
        else:
            live = LiveTraffic(self.catalog, self.shoppers, store_id=cfg.store_id, seed=cfg.seed,
                               pantries=self.pantries)
            result.phases["live"] = publish_stream(publisher, live.events(), rate=cfg.rate or None,
                                                   duration=cfg.duration, stop=stop)
        return result


def connect_publisher(settings: Settings, broker_url: str | None = None,
                      client_id: str | None = None,
                      accounts_dir: Path | None = None) -> Publisher:
    """A connected publisher for the settings' broker (or `broker_url`): with `accounts_dir`
    (what `edge-agent broker-config` wrote), one login per device class; else one, with the
    settings' mqtt_username/mqtt_password if any."""
    url = broker_url or settings.broker
    if not url:
        raise SimulatorConfigError("no MQTT broker configured: pass --broker mqtt://HOST:PORT "
                                   "(or set EDGE_BROKER)")
    address = parse_broker_url(url)
    if accounts_dir is not None:
        if not (accounts_dir / CREDENTIALS_FILE).is_file():
            raise SimulatorConfigError(f"--broker-accounts: no {CREDENTIALS_FILE} in "
                                       f"{accounts_dir} (edge-agent broker-config writes it)")
        return DeviceClassPublishers(address, accounts_dir, client_id).connect()
    password = settings.mqtt_password.get_secret_value() if settings.mqtt_password else None
    publisher = MqttPublisher(address.host, address.port, tls=address.tls,
                              username=settings.mqtt_username, password=password,
                              client_id=client_id)
    return publisher.connect()
