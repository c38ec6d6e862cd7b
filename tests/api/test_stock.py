"""What a shopper is told is in stock follows the shelves' latest readings at once, though
each serving process keeps the store's empty shelves in memory between changes. Readings go
in through the real writer; answers are read through a read-only connection, as a worker's."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlite_utils

from edge_agent.shoppers.catalog import products_by_id
from edge_agent.storage import open_database
from edge_agent.storage.event_writer import EventWriter, RawMessage
from tests.api.conftest import PRODUCTS
from tests.ingestion.conftest import STORE, shelf_event


class Store:
    def __init__(self, path: Path) -> None:
        self.db = open_database(path)
        sqlite_utils.Database(self.db.conn)["products"].upsert_all(PRODUCTS, pk="product_id")
        self.writer = EventWriter(self.db, store_id=STORE, max_payload_bytes=1 << 16,
                                  dead_letter_max_raw_bytes=1024)
        self.reads = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        self._readings = 0

    def reading(self, shelf: str, **fields: Any) -> None:
        # Each reading newer than the last (an older one is ignored, as it should be).
        self._readings += 1
        event = shelf_event(ts=f"2026-11-21T09:{self._readings:02d}:00Z", **fields)
        result = self.writer.write_batch([RawMessage(f"stores/{STORE}/shelf/{shelf}",
                                                     json.dumps(event).encode())])
        assert result.stored_total == 1, result

    def in_stock(self) -> dict[str, bool]:
        return {pid: p.in_stock for pid, p in products_by_id(
            self.reads, ["MILK", "OAT", "BREAD", "SOAP"]).items()}

    def stock_version(self) -> int:
        return int(self.reads.execute("SELECT version FROM stock_version").fetchone()[0])


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store(tmp_path / "edge.db")
    yield opened
    opened.reads.close()
    opened.db.close()


def test_a_shelf_emptied_or_refilled_shows_on_the_next_answer(store: Store) -> None:
    store.reading("S-MILK", product_id="MILK", quantity=5, capacity=24)
    assert store.in_stock()["MILK"] is True  # now kept in memory
    store.reading("S-MILK", product_id="MILK", quantity=0, capacity=24)
    assert store.in_stock() == {"MILK": False, "OAT": True, "BREAD": True, "SOAP": True}
    store.reading("S-MILK", product_id="MILK", quantity=12, capacity=24)
    assert store.in_stock()["MILK"] is True


def test_a_weighing_shelf_at_zero_is_empty(store: Store) -> None:
    store.reading("S-OAT", product_id="OAT", quantity=None, weight_g=0.0, capacity=10)
    assert store.in_stock()["OAT"] is False


def test_one_empty_shelf_of_two_is_out_of_stock(store: Store) -> None:
    store.reading("S-BREAD-1", product_id="BREAD", quantity=0, capacity=10)
    store.reading("S-BREAD-2", product_id="BREAD", quantity=8, capacity=10)
    assert store.in_stock()["BREAD"] is False
    store.reading("S-BREAD-1", product_id="BREAD", quantity=4, capacity=10)
    assert store.in_stock()["BREAD"] is True


def test_an_empty_shelf_given_to_another_product_moves_the_gap(store: Store) -> None:
    store.reading("S-1", product_id="SOAP", quantity=0, capacity=10)
    assert store.in_stock()["SOAP"] is False
    store.reading("S-1", product_id="OAT", quantity=0, capacity=10)
    assert store.in_stock()["SOAP"] is True and store.in_stock()["OAT"] is False


def test_readings_that_change_no_gap_keep_the_kept_shelves(store: Store) -> None:
    """Shelves report many times a second: only emptying or refilling rereads them."""
    store.reading("S-MILK", product_id="MILK", quantity=0, capacity=24)
    before = store.stock_version()
    store.reading("S-MILK", product_id="MILK", quantity=0, capacity=24)
    store.reading("S-OAT", product_id="OAT", quantity=7, capacity=24)
    store.reading("S-OAT", product_id="OAT", quantity=6, capacity=24)
    assert store.stock_version() == before
    store.reading("S-OAT", product_id="OAT", quantity=0, capacity=24)
    assert store.stock_version() == before + 1


def test_a_removed_empty_shelf_is_no_gap(store: Store) -> None:
    store.reading("S-MILK", product_id="MILK", quantity=0, capacity=24)
    assert store.in_stock()["MILK"] is False
    with store.db.conn:
        store.db.conn.execute("DELETE FROM shelf_state WHERE shelf_id = 'S-MILK'")
    assert store.in_stock()["MILK"] is True
