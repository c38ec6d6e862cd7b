"""Ingestion throughput: events/s from publish to committed SQLite rows, through Mosquitto.

    python benchmarks/ingest.py [--events N] [--json PATH]

Two modes, each measured for the agent and, in the same run, for a bare paho subscriber that
does no work (the reference; the ratio is what to compare across machines):
- live: a publisher process streams N events while the consumer runs; time from the first
  publish to the last event received (bare) or committed (agent).
- backlog: the broker already holds N events for the consumer's persistent session; time to
  drain them. This is the consumer's own capacity, whatever the publisher can do.
Loss is checked exactly: the bare subscriber counts distinct event ids, the agent's rows are
counted in SQLite.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import random
import sqlite3
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

import paho.mqtt.client as mqtt
from cpu_usage import process_cpu_s
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from edge_agent.agent import Agent
from edge_agent.broker import MosquittoBroker, MosquittoConfig
from edge_agent.settings import load_settings

STORE = "bench-store"
DEFAULT_EVENTS = 60_000
# A store's traffic is mostly sensors; sales are fewer but carry many lines.
EVENT_MIX = {"shelf.reading": 0.50, "zone.traffic": 0.15, "presence": 0.12,
             "pos.transaction": 0.15, "interaction": 0.08}
MAX_BASKET_LINES = 20
DRAIN_TIMEOUT_S = 300
SESSION_EXPIRY_S = 3600
RECEIVE_MAXIMUM = 2000
# How often the single-threaded publisher services its socket between publishes.
PUBLISH_LOOP_EVERY = 50


@dataclass
class Measurement:
    mode: str
    consumer: str
    events: int
    seconds: float
    received: int
    cpu_seconds: float  # consumer's own CPU (all its processes), robust to a busy machine

    @property
    def cpu_us_per_event(self) -> float:
        return self.cpu_seconds / self.received * 1e6 if self.received else 0.0

    @property
    def rate(self) -> float:
        return self.received / self.seconds if self.seconds else 0.0

    @property
    def lost(self) -> int:
        return self.events - self.received


def make_events(count: int, seed: int = 7) -> list[tuple[str, bytes]]:
    rng = random.Random(seed)
    kinds, weights = zip(*EVENT_MIX.items(), strict=True)
    out = []
    for n in range(count):
        kind = rng.choices(kinds, weights)[0]
        base = {"event_id": str(uuid.UUID(int=rng.getrandbits(128))), "store_id": STORE,
                "ts": f"2026-11-21T10:{n // 60000 % 60:02d}:{n // 1000 % 60:02d}.{n % 1000:03d}Z",
                "type": kind}
        if kind == "pos.transaction":
            lines = [{"product_id": f"P{rng.randrange(3000):06d}",
                      "quantity": rng.randint(1, 3), "unit_price": round(rng.uniform(0.5, 9), 2),
                      "discount": 0.0} for _ in range(rng.randint(1, MAX_BASKET_LINES))]
            payload = {**base, "transaction_id": f"T{n:09d}",
                       "customer_id": f"C{rng.randrange(20000):05d}" if rng.random() < .7 else None,
                       "items": lines,
                       "total": round(sum(i["quantity"] * i["unit_price"] for i in lines), 2)}
            topic = f"stores/{STORE}/pos/till-{rng.randint(1, 8)}"
        elif kind == "shelf.reading":
            shelf = rng.randrange(400)
            payload = {**base, "product_id": f"P{shelf * 7:06d}", "quantity": rng.randint(0, 24),
                       "capacity": 24}
            topic = f"stores/{STORE}/shelf/S{shelf:03d}"
        elif kind == "zone.traffic":
            payload = {**base, "people": rng.randint(0, 40), "avg_dwell_s": rng.uniform(5, 300)}
            topic = f"stores/{STORE}/zone/Z{rng.randrange(24):02d}"
        elif kind == "presence":
            payload = {**base, "customer_id": f"C{rng.randrange(20000):05d}",
                       "zone_id": f"Z{rng.randrange(24):02d}"}
            topic = f"stores/{STORE}/presence/cart-{rng.randrange(200)}"
        else:
            payload = {**base, "customer_id": f"C{rng.randrange(20000):05d}",
                       "action": rng.choice(["impression", "click", "dismiss", "add_to_list"]),
                       "product_id": f"P{rng.randrange(3000):06d}", "context": "kiosk",
                       "model_version": "ranker-1"}
            topic = f"stores/{STORE}/interaction/kiosk-{rng.randint(1, 6)}"
        out.append((topic, json.dumps(payload, separators=(",", ":")).encode()))
    return out


def publish_all(host: str, port: int, events: list[tuple[str, bytes]], started: Any) -> None:
    """Publisher process: QoS 1, as fast as the broker acknowledges. Single-threaded (no
    loop_start): with paho's network thread, every publish from another thread wakes it
    through a socket pair, which caps a Python publisher near 3,000 messages/s."""
    acked = 0

    def on_publish(*_args: Any) -> None:
        nonlocal acked
        acked += 1

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"bench-pub-{uuid.uuid4()}",
                         protocol=mqtt.MQTTv5)
    client.max_inflight_messages_set(RECEIVE_MAXIMUM)
    client.max_queued_messages_set(0)
    client.on_publish = on_publish
    client.connect(host, port)
    started.value = time.time()
    for n, (topic, payload) in enumerate(events):
        client.publish(topic, payload, qos=1)
        if n % PUBLISH_LOOP_EVERY == 0:
            client.loop(timeout=0)  # read PUBACKs, send what the in-flight window queued
    deadline = time.time() + DRAIN_TIMEOUT_S
    while acked < len(events) and time.time() < deadline:
        client.loop(timeout=0.05)
    client.disconnect()


def publish_in_process(broker: MosquittoBroker, events: list[tuple[str, bytes]]
                       ) -> tuple[multiprocessing.process.BaseProcess, Any]:
    context = multiprocessing.get_context("spawn")
    started = context.Value("d", 0.0)
    process = context.Process(target=publish_all,
                              args=(broker.host, broker.port, events, started))
    process.start()
    return process, started


class BareSubscriber:
    """The reference: a paho subscriber that only counts distinct event ids."""

    def __init__(self, broker: MosquittoBroker) -> None:
        self._broker = broker
        self.seen: set[bytes] = set()
        self.last_at = 0.0
        self.subscribed = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-bare",
                                  protocol=mqtt.MQTTv5)
        self.client.on_message = self._on_message
        self.client.on_connect = lambda c, *_: c.subscribe(f"stores/{STORE}/+/+", qos=1)
        self.client.on_subscribe = lambda *_: self.subscribed.set()

    def _on_message(self, _c: Any, _u: Any, message: mqtt.MQTTMessage) -> None:
        # The event id sits at a fixed place in make_events' payloads: no JSON parsing.
        self.seen.add(message.payload[13:49])
        self.last_at = time.time()

    def connect(self) -> None:
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = SESSION_EXPIRY_S
        props.ReceiveMaximum = RECEIVE_MAXIMUM
        self.client.connect(self._broker.host, self._broker.port, clean_start=False,
                            properties=props)
        self.client.loop_start()
        self.subscribed.wait(10)

    def disconnect(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def received(self) -> int:
        return len(self.seen)


def _agent_settings(broker: MosquittoBroker, db: Path) -> Any:
    return load_settings(store_id=STORE, broker=broker.url, db=db, log_level="WARNING",
                         mqtt_receive_maximum=RECEIVE_MAXIMUM)


def _committed(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT count(*) FROM events").fetchone()[0]


def _wait_for(count_fn: Any, target: int) -> None:
    deadline = time.time() + DRAIN_TIMEOUT_S
    while count_fn() < target and time.time() < deadline:
        time.sleep(0.01)


class Consumer(Protocol):
    """What a measured consumer offers: a fresh connection, a count of what it has taken in
    (received or committed), the CPU it used, and when it finished."""

    label: str

    def start(self) -> None: ...
    def stop(self) -> None: ...
    def taken_in(self) -> int: ...
    def cpu_seconds(self) -> float: ...
    def finished_at(self) -> float: ...


class BareConsumer:
    label = "bare paho subscriber (reference)"

    def __init__(self, broker: MosquittoBroker) -> None:
        self._broker = broker
        self._sub = BareSubscriber(broker)

    def start(self) -> None:
        self._sub = BareSubscriber(self._broker)  # same client id: the same session
        self._sub.connect()

    def stop(self) -> None:
        self._sub.disconnect()

    def taken_in(self) -> int:
        return self._sub.received()

    def cpu_seconds(self) -> float:
        return time.process_time()

    def finished_at(self) -> float:
        return self._sub.last_at


class AgentConsumer:
    label = "edge agent (validate + commit + ack)"

    def __init__(self, broker: MosquittoBroker, db: Path) -> None:
        self._settings = _agent_settings(broker, db)
        self._db = db
        self._agent: Agent | None = None
        self._done_at = 0.0

    def start(self) -> None:
        self._agent = Agent(self._settings)
        self._agent.start()
        self._agent.ingestion.wait_connected(10)

    def stop(self) -> None:
        assert self._agent is not None
        self._agent.stop()

    def taken_in(self) -> int:
        assert self._agent is not None
        stored = self._agent.stats().stored_total
        self._done_at = time.time()
        return stored

    def cpu_seconds(self) -> float:
        # This process (paho, pump) plus the writer process.
        assert self._agent is not None
        return time.process_time() + process_cpu_s(self._agent.ingestion.writer_pid)

    def finished_at(self) -> float:
        return self._done_at

    def committed(self) -> int:
        return _committed(self._db)


def measure(consumer: Consumer, broker: MosquittoBroker, events: list[tuple[str, bytes]],
            mode: str) -> Measurement:
    """Backlog: publish while the consumer is away (its session queues), then time the
    drain. Live: time from the first publish to the last event taken in."""
    consumer.start()  # creates the persistent session and subscription
    if mode == "backlog":
        consumer.stop()
        process, _ = publish_in_process(broker, events)
        process.join()
        start = time.time()
        consumer.start()
    else:
        process, started = publish_in_process(broker, events)
    cpu_start = consumer.cpu_seconds()
    _wait_for(consumer.taken_in, len(events))
    cpu = consumer.cpu_seconds() - cpu_start
    if mode == "live":
        process.join()
        start = started.value
    taken = consumer.taken_in()
    elapsed = consumer.finished_at() - start
    consumer.stop()
    if isinstance(consumer, AgentConsumer):
        taken = consumer.committed()  # loss is judged on the rows in SQLite
    return Measurement(mode, consumer.label, len(events), elapsed, taken, cpu)


def print_table(results: list[Measurement]) -> None:
    reference = {m.mode: m.rate for m in results if m.consumer.startswith("bare")}
    header = (f"| {'mode':7} | {'consumer':38} | {'events':>7} | {'s':>6} | {'events/s':>9} | "
              f"{'ratio':>5} | {'CPU us/event':>12} | {'lost':>4} |")
    print(header)
    print("|" + "|".join("-" * (len(cell)) for cell in header.split("|")[1:-1]) + "|")
    for m in results:
        ratio = m.rate / reference[m.mode] if reference.get(m.mode) else float("nan")
        print(f"| {m.mode:7} | {m.consumer:38} | {m.events:>7} | {m.seconds:>6.2f} | "
              f"{m.rate:>9,.0f} | {ratio:>5.2f} | {m.cpu_us_per_event:>12.1f} | {m.lost:>4} |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=DEFAULT_EVENTS)
    parser.add_argument("--modes", default="live,backlog")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON here")
    args = parser.parse_args(argv)
    events = make_events(args.events)
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        workdir = Path(tmp)
        for mode in args.modes.split(","):
            for consumer in ("bare", "agent"):
                # A fresh broker per measurement: no queued leftovers, no warm state.
                config = MosquittoConfig(persistence=False)
                with MosquittoBroker(config_dir=workdir / f"mq-{mode}-{consumer}",
                                     config=config) as broker:
                    measured: Consumer = (
                        BareConsumer(broker) if consumer == "bare"
                        else AgentConsumer(broker, workdir / f"agent-{mode}.db"))
                    results.append(measure(measured, broker, events, mode))
    print_table(results)
    if args.json:
        rows = [{**asdict(m), "events_per_s": m.rate, "lost": m.lost,
                 "cpu_us_per_event": m.cpu_us_per_event} for m in results]
        args.json.write_text(json.dumps({"benchmark": "ingest", "results": rows}, indent=2))
    return 0 if all(m.lost == 0 for m in results) else 1


if __name__ == "__main__":
    sys.exit(main())
