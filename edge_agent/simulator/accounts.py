"""Publishing as the store's devices do on a broker set up with `edge-agent broker-config`:
each device class logs in with its own account, which the ACL lets publish only under its
own topic segment. The simulator plays every class at once, so it holds one connection per
class and sends each message on the connection of its topic's class.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Self

from edge_agent.broker_auth import DEVICE_CLASSES, load_store_broker_config
from edge_agent.settings import BrokerAddress
from edge_agent.simulator.publisher import MqttPublisher

# stores/{store}/{class}/{device}: the class is the third segment.
CLASS_SEGMENT = 2


class DeviceClassPublishers:
    """The `MqttPublisher` interface over one publisher per device class."""

    def __init__(self, address: BrokerAddress, accounts_dir: Path,
                 client_id: str | None = None) -> None:
        config = load_store_broker_config(accounts_dir)
        prefix = client_id or f"simulator-{uuid.uuid4().hex[:8]}"
        self._by_class = {
            device_class: MqttPublisher(address.host, address.port, tls=address.tls,
                                        username=account.username, password=account.password,
                                        client_id=f"{prefix}-{device_class}")
            for device_class in DEVICE_CLASSES
            for account in [config.account(device_class)]
        }

    def connect(self) -> Self:
        for publisher in self._by_class.values():
            publisher.connect()
        return self

    @property
    def unacked(self) -> int:
        return sum(p.unacked for p in self._by_class.values())

    def publish(self, topic: str, payload: bytes, cancel: threading.Event | None = None) -> None:
        self.publish_batch(((topic, payload),), cancel=cancel)

    def publish_batch(self, messages: Iterable[tuple[str, bytes]],
                      cancel: threading.Event | None = None) -> None:
        by_class: dict[str, list[tuple[str, bytes]]] = {}
        for topic, payload in messages:
            parts = topic.split("/")
            device_class = parts[CLASS_SEGMENT] if len(parts) > CLASS_SEGMENT else ""
            if device_class not in self._by_class:
                raise ValueError(f"no device class publishes on {topic!r}")
            by_class.setdefault(device_class, []).append((topic, payload))
        for device_class, batch in by_class.items():
            self._by_class[device_class].publish_batch(batch, cancel=cancel)

    def poll(self) -> None:
        for publisher in self._by_class.values():
            publisher.poll()

    def flush(self, timeout: float | None = 10.0) -> bool:
        # Sequential, each within the whole timeout: only a broker that has gone away makes
        # this slow, and then the caller is ending anyway.
        return all([p.flush(timeout) for p in self._by_class.values()])

    def close(self, flush_timeout: float = 10.0) -> None:
        for publisher in self._by_class.values():
            publisher.close(flush_timeout)


Publisher = MqttPublisher | DeviceClassPublishers
