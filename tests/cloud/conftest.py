"""The local cloud (TLS Mosquitto + moto server) for the cloud-link tests: started once per
session, real processes on free ports, torn down at the end."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from awscrt import mqtt5

from cloud_sync.lake.store import Lake
from cloud_sync.link.credentials import LinkCredentials
from cloud_sync.link.mqtt import LinkClient, connect_mqtt5
from cloud_sync.local.broker import find_mosquitto
from cloud_sync.local.stack import LAKE_BUCKET, LocalCloud
from edge_agent.broker import MosquittoBroker, free_port
from tests.cloud.stores import RunningAgent
from tests.test_embedded_broker import wait_until

_ids = itertools.count(1)


def unique_store(prefix: str = "store") -> str:
    """A store id no other test uses: the broker and moto live for the whole session."""
    return f"{prefix}-{next(_ids)}"


class Inbox:
    """Collects the publishes a client receives (an `on_publish` callback)."""

    def __init__(self) -> None:
        self.packets: list[mqtt5.PublishPacket] = []

    def __call__(self, packet: mqtt5.PublishPacket) -> None:
        self.packets.append(packet)

    @property
    def topics(self) -> list[str]:
        return [p.topic for p in self.packets]

    @property
    def payloads(self) -> list[bytes]:
        return [bytes(p.payload) for p in self.packets]

    def wait_for(self, count: int, timeout: float = 5.0) -> bool:
        return wait_until(lambda: len(self.packets) >= count, timeout)


@pytest.fixture(scope="session")
def local_cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCloud]:
    if find_mosquitto() is None:
        pytest.skip("mosquitto is not installed")
    cloud = LocalCloud(tmp_path_factory.mktemp("local-cloud"))
    with cloud:
        yield cloud


@pytest.fixture
def connect() -> Iterator[Callable[..., LinkClient]]:
    """`connect(credentials, client_id=None, on_publish=None, clean=True, **kw)`; every client
    made through it is stopped when the test ends."""
    clients: list[LinkClient] = []

    def _connect(credentials: LinkCredentials, client_id: str | None = None,
                 on_publish: Callable[[mqtt5.PublishPacket], None] | None = None,
                 clean: bool = True, **kwargs: object) -> LinkClient:
        client = connect_mqtt5(credentials, client_id or credentials.thing_name, on_publish,
                               clean, **kwargs)  # type: ignore[arg-type]
        clients.append(client)
        return client

    yield _connect
    for client in clients:
        client.stop()


@pytest.fixture
def store_credentials(local_cloud: LocalCloud,
                      tmp_path: Path) -> Callable[[str], LinkCredentials]:
    """Credentials straight from the local CA (no IoT registration) for a store id."""
    def make(identity: str) -> LinkCredentials:
        return local_cloud.credentials(identity, tmp_path / "clients" / identity)

    return make


@pytest.fixture
def lake(local_cloud: LocalCloud) -> Lake:
    return Lake(local_cloud.boto3_client("s3"), LAKE_BUCKET)


@pytest.fixture
def agent_factory(mosquitto_broker: MosquittoBroker, tmp_path: Path) -> Iterator[Any]:
    agents: list[RunningAgent] = []

    def make(store: str, credentials: Path) -> RunningAgent:
        agent = RunningAgent(store, mosquitto_broker, tmp_path / f"{store}.db", credentials,
                             free_port())
        agents.append(agent)
        return agent

    yield make
    for agent in agents:
        agent.stop()
