"""Group commit: what arrives while the writer commits goes in one next batch, so at a
steady rate each commit (and its fsync) takes everything that waited for it."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

from edge_agent.agent import Agent
from edge_agent.settings import load_settings
from tests.ingestion.conftest import STORE, Publisher, count, wait_until, zone_event

# Long enough for the pump to have sent what was published (its window is 5 ms), far
# below the writer's 5 s busy timeout on the lock this test holds.
SETTLE_S = 0.3


def test_messages_arriving_during_a_commit_go_in_one_next_batch(
        mqtt_broker: Any, publisher: Publisher, db_path: Path) -> None:
    settings = load_settings(store_id=STORE, broker=mqtt_broker.url, db=db_path,
                             batch_max_wait_ms=5, mqtt_protocol=mqtt_broker.mqtt_protocol)
    with Agent(settings) as agent:
        assert agent.ingestion.wait_connected(10)
        # Holding the write lock keeps the writer inside its first commit.
        blocker = sqlite3.connect(db_path, isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")
        try:
            publisher.event(zone_event())
            time.sleep(SETTLE_S)
            for group in (10, 30):  # two bursts while the writer is still busy
                for _ in range(group):
                    publisher.event(zone_event())
                publisher.flush()
                time.sleep(SETTLE_S)
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        wait_until(lambda: count(db_path, "SELECT count(*) FROM events") == 41,
                   what="all events after the lock is released")
        wait_until(lambda: agent.stats().stored_total == 41, what="the pump's accounting")
        registry = agent.metrics.registry
        assert registry.get_sample_value("edge_ingest_batch_size_count") == 2
        assert registry.get_sample_value("edge_ingest_batch_size_sum") == 41
