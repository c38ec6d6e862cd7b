"""`cloud-sync analyze fleet ... --push`: each store is sent its own shoppers' results on
`cmd/instore/{store}/insights`, through a real TLS Mosquitto (the IoT Core stand-in) with the
cloud's identity from a credentials directory, as with AWS IoT Core."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from awscrt import mqtt5

from cloud_sync.analysis.downlink import InsightRecord
from cloud_sync.cli import main
from cloud_sync.lake.schema import EVENT_SCHEMA
from cloud_sync.link.masterdata import decode_message
from cloud_sync.link.mqtt import connect_mqtt5
from cloud_sync.local.broker import CLOUD_IDENTITY, TlsBroker, find_mosquitto
from tests.analysis.conftest import CATALOG, sale, shopper

# Who shops where: ann only in s1, ben only in s2, cat in both.
SHOPS = {"ann": ("s1",), "ben": ("s2",), "cat": ("s1", "s2")}


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[TlsBroker]:
    if find_mosquitto() is None:
        pytest.skip("mosquitto is not installed")
    with TlsBroker(tmp_path / "broker") as b:
        yield b


def test_fleet_push_sends_each_store_its_own_shoppers(
        broker: TlsBroker, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    now = datetime.now(UTC)
    rows = [sale(who, now - timedelta(days=d), {"p-milk": 1, "p-bread": 1}, store=store)
            for who, stores in SHOPS.items() for store in stores for d in (3, 10, 17)]
    table = pa.Table.from_pylist([{**r, "event_id": str(i)} for i, r in enumerate(rows)],
                                 schema=EVENT_SCHEMA)
    pq.write_table(table, tmp_path / "lake.parquet")
    (tmp_path / "catalog.csv").write_text(
        "product_id,category\n" + "".join(f"{p},{c}\n" for p, c in CATALOG.items()))
    broker.credentials(CLOUD_IDENTITY, tmp_path / "issued").write(tmp_path / "cloud")

    received: dict[str, list[InsightRecord]] = {}
    got_both = threading.Event()

    def on_publish(packet: mqtt5.PublishPacket) -> None:
        message = decode_message(bytes(packet.payload))
        store = packet.topic.split("/")[2]
        received.setdefault(store, []).extend(
            InsightRecord.model_validate(values) for _, values in message.rows)
        if len(received) == 2:
            got_both.set()

    watcher = broker.credentials(CLOUD_IDENTITY, tmp_path / "watcher")
    with connect_mqtt5(watcher, "watcher", on_publish) as link:
        link.subscribe(["cmd/instore/+/insights"])
        assert main(["analyze", "fleet", "--parquet", str(tmp_path / "lake.parquet"),
                     "--catalog", str(tmp_path / "catalog.csv"),
                     "--state-dir", str(tmp_path / "state"), "--batch-bucket", "b",
                     "--role-arn", "arn:aws:iam::1:role/r",
                     "--push", "--credentials", str(tmp_path / "cloud")]) == 0
        assert got_both.wait(10), f"insights reached only {sorted(received)}"
    report = json.loads(capsys.readouterr().out)
    assert report["counts"] == {"fallback/not configured": 3}
    assert report["pushed"] == {"s1": {"sent": 2, "messages": 1, "withheld": 1},
                                "s2": {"sent": 2, "messages": 1, "withheld": 1}}
    for store in ("s1", "s2"):
        assert {r.shopper for r in received[store]} == {
            shopper(who) for who, stores in SHOPS.items() if store in stores}
        assert {r.fallback_reason for r in received[store]} == {"not configured"}


def test_push_without_a_link_is_refused(tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    pq.write_table(pa.Table.from_pylist([{**sale("ann", datetime.now(UTC), {"p-milk": 1}),
                                          "event_id": "1"}], schema=EVENT_SCHEMA),
                   tmp_path / "lake.parquet")
    (tmp_path / "catalog.csv").write_text("product_id,category\np-milk,Milk\n")
    assert main(["analyze", "shopper", shopper("ann"), "--parquet",
                 str(tmp_path / "lake.parquet"), "--catalog", str(tmp_path / "catalog.csv"),
                 "--state-dir", str(tmp_path / "state"), "--push"]) == 2
    assert "--push needs --credentials DIR" in capsys.readouterr().err
