"""The uplink's publisher against the IoT Core stand-in, with a small in-memory outbox: the
cursor moves only on a delivered PUBACK, in order; a NOT_AUTHORIZED PUBACK stops it and
raises the alarm instead of retrying in a loop; a dropped connection loses nothing."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable

from cloud_sync.link.batch import encode_batch
from cloud_sync.link.credentials import LinkCredentials
from cloud_sync.link.publisher import BatchPublisher, LinkState
from cloud_sync.local.stack import LocalCloud
from tests.cloud.conftest import unique_store, wait_until


@dataclasses.dataclass(frozen=True)
class Batch:
    batch_id: str
    last_seq: int
    events: int
    payload: bytes


class MemoryOutbox:
    """`count` batches of one event each, seq 1..count."""

    def __init__(self, store: str, count: int) -> None:
        self.batches = [Batch(f"b{n}", n, 1, encode_batch(store, f"b{n}", [
            {"event_id": f"e{n}", "type": "zone.traffic", "ts": "2026-11-21T09:30:00Z"}]))
            for n in range(1, count + 1)]
        self.acknowledged: list[int] = []
        self._lock = threading.Lock()

    def cursor(self) -> int:
        with self._lock:
            return self.acknowledged[-1] if self.acknowledged else 0

    def next_batch(self, after_seq: int) -> Batch | None:
        return next((b for b in self.batches if b.last_seq > after_seq), None)

    def acknowledge(self, seq: int) -> None:
        with self._lock:
            self.acknowledged.append(seq)


def test_delivered_batches_move_the_cursor_in_order(
        local_cloud: LocalCloud, store_credentials: Callable[[str], LinkCredentials]) -> None:
    store = unique_store()
    outbox = MemoryOutbox(store, 250)
    publisher = BatchPublisher(store_credentials(store), outbox, flow_control=False)
    publisher.start()
    try:
        assert wait_until(lambda: outbox.cursor() == 250, timeout=30)
        assert publisher.state == LinkState.CONNECTED
    finally:
        publisher.stop()
    assert outbox.acknowledged == sorted(outbox.acknowledged)
    assert publisher.stats.events == 250 and publisher.stats.refused == 0


def test_not_authorized_stops_the_uplink_and_says_so(
        local_cloud: LocalCloud, store_credentials: Callable[[str], LinkCredentials]) -> None:
    # A certificate for one store used to publish as another: IoT Core's policy (and the
    # stand-in's ACL) answers NOT_AUTHORIZED.
    mine, theirs = unique_store(), unique_store()
    credentials = dataclasses.replace(store_credentials(mine), thing_name=theirs)
    outbox = MemoryOutbox(theirs, 5)
    publisher = BatchPublisher(credentials, outbox)
    publisher.start()
    try:
        assert wait_until(lambda: publisher.state == LinkState.NOT_AUTHORIZED, timeout=30)
        refused = publisher.stats.refused
        time.sleep(2)  # no retry loop: the next attempt is minutes away
        assert publisher.stats.refused == refused == 1
        assert outbox.cursor() == 0  # nothing counted as sent
        assert publisher.last_error == "not authorized"
    finally:
        publisher.stop()


def test_a_broker_restart_mid_drain_loses_nothing(
        local_cloud: LocalCloud, store_credentials: Callable[[str], LinkCredentials]) -> None:
    store = unique_store()
    outbox = MemoryOutbox(store, 1000)
    # IoT Core's flow control on: 100 publishes/s, so the restart lands mid-drain.
    publisher = BatchPublisher(store_credentials(store), outbox)
    publisher.start()
    try:
        assert wait_until(lambda: outbox.cursor() >= 200, timeout=30)
        local_cloud.broker.restart()
        assert wait_until(lambda: outbox.cursor() == 1000, timeout=90)
    finally:
        publisher.stop()
    assert outbox.acknowledged == sorted(outbox.acknowledged)
