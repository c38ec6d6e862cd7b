"""Uplink: how fast a store's backlog drains to the lake, against a bare MQTT publisher.

    python benchmarks/uplink.py [--events 1000000] [--limited-events 500000]
                                [--bare-repeats 3] [--json PATH]

1. A backlog of `--events` events in a store database, written by the ingestion writer
   (`EventWriter.write_batch`, 5,000 a transaction) in a busy store's mix and shapes
   (`benchmarks/storage.py`'s traffic: the simulator's catalog, shoppers, zones and devices;
   86% shelf readings, 9% zone traffic, 3.5% presence, 1% kiosk interactions, 0.5% sales
   of 12 lines). 80% of the seeded shoppers consent to personalization, 30% of sales are
   walk-ins: the privacy transform (allow-list, consent lookup, HMAC pseudonyms) runs.
2. A `LocalCloud` (TLS Mosquitto standing in for IoT Core, moto for S3) in a temp dir, the
   store's certificate from its CA, and one real `LakeWorker` in a subprocess (the fair
   choice on two cores) on the shared subscription, subscribed during every run.
3. The batches are cut once, in memory, from the outbox (`Outbox.next_batch`, no network):
   the "cut only" rate, the payloads for the reference, and a cProfile of the cut.
4. Reference: a bare awscrt MQTT 5 client (`connect_mqtt5`, flow control off) publishes those
   payloads at QoS 1 with at most 100 in flight to the store's uplink topic (median of
   `--bare-repeats` runs: it takes well under a second).
   Ours: the real `Outbox` + `BatchPublisher(flow_control=False)` drains the backlog from
   cursor 0. Both are timed from their first publish (ours: its first cut) to the last
   PUBACK (ours: the cursor at the last seq). Between the two the lake is emptied, so the
   lake check below covers our uplink alone.
5. Lake check: every partition compacted, rows and distinct event ids against the database.
6. Under IoT Core's limits: ours again with `flow_control=True` (the SDK's 100 publishes/s
   and 512 KiB/s) over the first `--limited-events` events, and the 24-hour projection.

Bytes on the wire are measured: what the broker read from its sockets (`rchar` of the
mosquitto process in /proc, i.e. TLS records, without TCP/IP headers), next to the payload
bytes. CPU is per process from /proc.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import json
import multiprocessing
import os
import pstats
import random
import sqlite3
import sys
import tempfile
import threading
import time
from collections import Counter, deque
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

# pyarrow (in the lake worker) and numpy: one thread each, the machine has two cores.
os.environ.setdefault("OMP_NUM_THREADS", "1")

from awscrt import mqtt5
from cpu_usage import process_cpu_s
from machine import log, machine
from storage import RATES, Traffic, fresh_db, writer

import cloud_sync.link.batch as batch_module
import edge_agent.uplink.outbox as outbox_module
from cloud_sync.lake.store import Lake
from cloud_sync.lake.worker import LakeWorker
from cloud_sync.link.credentials import LinkCredentials
from cloud_sync.link.mqtt import connect_mqtt5
from cloud_sync.link.publisher import MAX_IN_FLIGHT, BatchPublisher, OutgoingBatchLike
from cloud_sync.local.broker import CLOUD_IDENTITY
from cloud_sync.local.stack import LAKE_BUCKET, LocalCloud
from cloud_sync.topics import uplink_topic
from edge_agent.storage import open_database
from edge_agent.uplink.outbox import Outbox, OutgoingBatch

STORE = "bench-store"  # storage.Traffic's store id
PSEUDONYM_KEY = bytes(range(32))
DEFAULT_EVENTS = 1_000_000
DEFAULT_LIMITED_EVENTS = 500_000
WRITE_BATCH = 5000  # messages per ingestion transaction: big batches, as a backlog is fast
BUSY_STORE_RATE = sum(RATES.values())  # ~58 events/s, ~5M a day
DAY_EVENTS = 5_000_000
# IoT Core's per-connection limits, as awscrt's AWS_IOT_CORE_DEFAULTS applies them.
IOT_PUBLISHES_PER_S = 100
IOT_BYTES_PER_S = 512 * 1024
TARGET_RATIO = 0.7
TARGET_DAY_S = 3600.0
PROFILE_SAMPLE_EVENTS = 100_000
# A cap on events per batch for the what-if measurement: one that fits the payload limit
# on the first encoding for this mix (~37 compressed bytes/event: 2,500 events ~ 93 KB).
WHAT_IF_MAX_EVENTS = 2500
WHAT_IF_ROUNDS = 2
RUN_TIMEOUT_S = 600.0
LAKE_TIMEOUT_S = 600.0


# -- the backlog --------------------------------------------------------------------------------


def build_backlog(path: Path, events: int, seed: int = 7) -> dict[str, Any]:
    """`events` messages through the ingestion writer, stamped at a busy store's rate and
    ending ten minutes ago; returns the mix and the time it took."""
    traffic = Traffic(seed)
    db, settings = fresh_db(path, traffic)
    kinds, weights = zip(*RATES.items(), strict=True)
    rng = random.Random(seed + 1)
    start = datetime.now(UTC) - timedelta(seconds=events / BUSY_STORE_RATE + 600)
    clock = [start]
    write = writer(db, settings, clock)
    mix: Counter[str] = Counter()
    began = time.perf_counter()
    step = timedelta(seconds=1 / BUSY_STORE_RATE)
    for first in range(0, events, WRITE_BATCH):
        # Each event its own ts (a shared one would flatter the compression), and the
        # writer's clock just after the batch's last one.
        count = min(WRITE_BATCH, events - first)
        stamps = [start + step * n for n in range(first, first + count)]
        clock[0] = stamps[-1] + timedelta(milliseconds=200)
        batch = [traffic.message(kind, ts)
                 for kind, ts in zip(rng.choices(kinds, weights, k=count), stamps, strict=True)]
        result = write.write_batch(batch)
        mix.update(result.stored)
    seconds = time.perf_counter() - began
    consenting, customers = db.execute(
        "SELECT sum(consent_personalization), count(*) FROM customers").fetchone()
    db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.conn.close()
    return {"events": sum(mix.values()), "seconds": seconds, "mix": dict(mix),
            "customers": customers, "consenting": consenting,
            "db_mb": path.stat().st_size / 2**20}


def event_ids(path: Path) -> tuple[set[str], int]:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        ids = {row[0] for row in conn.execute("SELECT event_id FROM events")}
        last = conn.execute("SELECT max(seq) FROM events").fetchone()[0]
    return ids, last


def nth_seq(path: Path, n: int) -> int:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        row = conn.execute("SELECT seq FROM events ORDER BY seq LIMIT 1 OFFSET ?",
                           (max(0, n - 1),)).fetchone()
        return row[0] if row else conn.execute("SELECT max(seq) FROM events").fetchone()[0]


def reset_cursor(path: Path) -> None:
    with contextlib.closing(sqlite3.connect(path)) as conn, conn:
        conn.execute("UPDATE uplink_cursor SET seq = 0 WHERE id = 1")


# -- cutting batches without a network ----------------------------------------------------------


def cut_all(path: Path, limit_events: int | None = None
            ) -> tuple[list[OutgoingBatch], float, float]:
    """Every batch from cursor 0, as the uplink would cut them (nothing acknowledged); with
    the wall time and this thread's CPU time (which a busy machine does not inflate)."""
    with contextlib.closing(sqlite3.connect(path)) as conn:
        outbox = Outbox(conn, STORE, PSEUDONYM_KEY)
        batches: list[OutgoingBatch] = []
        after, sent = 0, 0
        began, cpu = time.perf_counter(), time.thread_time()
        while limit_events is None or sent < limit_events:
            batch = outbox.next_batch(after)
            if batch is None:
                break
            batches.append(batch)
            after, sent = batch.last_seq, sent + batch.events
        return batches, time.perf_counter() - began, time.thread_time() - cpu


# Where the cut's time goes: cProfile's own time per function, grouped.
ORJSON_LOADS = "<orjson.loads>"  # how cProfile names the C function


def _category(key: tuple[str, int, str]) -> str:
    filename, _line, name = key
    if "sqlite3" in name:
        return "SQLite (events, consent)"
    if name == ORJSON_LOADS:
        return "JSON parse (stored bodies)"
    if name == "<orjson.dumps>":
        return "JSON encode (batch)"
    if "zlib" in name:
        return "zlib (level 6)"
    if filename.endswith(("privacy.py", "hmac.py")) or "_hashlib" in name:
        return "privacy (allow-list, HMAC)"
    return "other Python (loops, dict updates)"


def profile_cut(path: Path, sample_events: int) -> dict[str, Any]:
    """cProfile of cutting the first `sample_events` events, plus the counts that show how
    much work is done per event sent (rows parsed, encodings per batch)."""
    profiler = cProfile.Profile()
    profiler.enable()
    batches, profiled_s, _ = cut_all(path, sample_events)
    profiler.disable()
    stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    own: Counter[str] = Counter()
    calls: Counter[str] = Counter()
    for key, (_cc, ncalls, tottime, _cum, _callers) in stats.items():
        own[_category(key)] += tottime
        if key[2] in ("encode_batch", ORJSON_LOADS):
            calls[key[2]] += ncalls
    sent = sum(b.events for b in batches)
    total = sum(own.values()) or 1.0
    return {"events": sent, "batches": len(batches), "profiled_s": profiled_s,
            "share": {k: v / total for k, v in own.most_common()},
            "rows_parsed_per_event_sent": calls[ORJSON_LOADS] / sent,
            "encodings_per_batch": calls["encode_batch"] / len(batches)}


def what_if_cut(path: Path, sample_events: int, max_events: int) -> dict[str, Any]:
    """The cut's rate on the sample as shipped; with MAX_EVENTS_PER_BATCH lowered so a batch
    fits on its first encoding; and that plus zlib level 1. The module constants are patched
    here only, for the measurement; the variants take turns, best of WHAT_IF_ROUNDS each, so
    a burst of load on the machine does not decide the comparison."""
    original = (outbox_module.MAX_EVENTS_PER_BATCH, batch_module.COMPRESSION_LEVEL)
    variants = {"shipped": original,
                f"MAX_EVENTS_PER_BATCH={max_events}": (max_events, original[1]),
                f"MAX_EVENTS_PER_BATCH={max_events}, zlib level 1": (max_events, 1)}
    best: dict[str, dict[str, Any]] = {}
    try:
        for _round in range(WHAT_IF_ROUNDS):
            for name, (events_cap, level) in variants.items():
                outbox_module.MAX_EVENTS_PER_BATCH = events_cap
                batch_module.COMPRESSION_LEVEL = level
                batches, seconds, cpu_s = cut_all(path, sample_events)
                sent = sum(b.events for b in batches)
                if name not in best or sent / cpu_s > best[name]["events_per_cpu_s"]:
                    best[name] = {
                        "events_per_s": sent / seconds, "events_per_cpu_s": sent / cpu_s,
                        "batches": len(batches),
                        "payload_bytes_per_event": sum(len(b.payload) for b in batches) / sent}
    finally:
        outbox_module.MAX_EVENTS_PER_BATCH, batch_module.COMPRESSION_LEVEL = original
    return best


# -- the lake worker, in its own process --------------------------------------------------------


def _lake_worker_process(directory: str, client_id: str, events: Any, batches: Any,
                         dead: Any, last_at: Any, ready: Any, stop: Any) -> None:
    """The real LakeWorker; every 10 ms its counters are copied to shared memory."""
    info = LocalCloud.attach(Path(directory))
    credentials = info.credentials(CLOUD_IDENTITY,
                                   Path(directory) / "lake-workers" / client_id)
    worker = LakeWorker(credentials, Lake(info.boto3_client("s3"), LAKE_BUCKET), client_id)
    worker.start()
    ready.set()
    seen = -1
    while not stop.wait(0.01):
        if worker.stats.events != seen:
            seen = worker.stats.events
            last_at.value = time.time()
            events.value, batches.value = seen, worker.stats.batches
            dead.value = worker.stats.dead_letters
    worker.stop()


class LakeWorkerProcess:
    def __init__(self, directory: Path, client_id: str = "lake-bench") -> None:
        context = multiprocessing.get_context("spawn")
        self.events = context.Value("q", 0)
        self.batches = context.Value("q", 0)
        self.dead = context.Value("q", 0)
        self.last_at = context.Value("d", 0.0)
        self._ready = context.Event()
        self._stop = context.Event()
        self.process = context.Process(
            target=_lake_worker_process, daemon=True,
            args=(str(directory), client_id, self.events, self.batches, self.dead,
                  self.last_at, self._ready, self._stop))

    def start(self) -> None:
        self.process.start()
        if not self._ready.wait(60):
            raise RuntimeError("the lake worker did not start")

    def wait_for(self, events: int, timeout: float = LAKE_TIMEOUT_S) -> float:
        """Wait until the worker has written `events` in all; the time it wrote the last."""
        deadline = time.monotonic() + timeout
        while self.events.value < events:
            if time.monotonic() > deadline:
                raise TimeoutError(f"the lake has {self.events.value} of {events} events")
            time.sleep(0.01)
        return self.last_at.value

    def cpu_s(self) -> float:
        return process_cpu_s(self.process.pid)

    def stop(self) -> None:
        self._stop.set()
        self.process.join(60)


# -- measuring one run --------------------------------------------------------------------------


@dataclass
class Run:
    name: str
    events: int = 0
    batches: int = 0
    payload_bytes: int = 0
    seconds: float = 0.0
    wire_bytes_in: int | None = None  # what the broker read from its sockets
    cpu_s: float = 0.0  # the publishing process
    broker_cpu_s: float = 0.0
    lake_cpu_s: float = 0.0
    lake_done_s: float | None = None  # first publish to the last event written in the lake
    phases_s: dict[str, float] = field(default_factory=dict)

    @property
    def events_per_s(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0

    @property
    def events_per_batch(self) -> float:
        return self.events / self.batches if self.batches else 0.0

    @property
    def payload_bytes_per_event(self) -> float:
        return self.payload_bytes / self.events if self.events else 0.0

    @property
    def wire_bytes_per_event(self) -> float | None:
        return self.wire_bytes_in / self.events if self.wire_bytes_in and self.events else None

    @property
    def overhead_bytes_per_message(self) -> float | None:
        if self.wire_bytes_in is None or not self.batches:
            return None
        return (self.wire_bytes_in - self.payload_bytes) / self.batches

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "events_per_s": self.events_per_s,
                "events_per_batch": self.events_per_batch,
                "payload_bytes_per_event": self.payload_bytes_per_event,
                "wire_bytes_per_event": self.wire_bytes_per_event,
                "overhead_bytes_per_message": self.overhead_bytes_per_message}


class Counters:
    """The broker's socket reads and CPU, the lake worker's CPU and this process's, between
    `start` and `stop`."""

    def __init__(self, broker_pid: int | None, lake: LakeWorkerProcess) -> None:
        self._broker_pid, self._lake = broker_pid, lake
        self._start: tuple[int | None, float, float, float] = (None, 0.0, 0.0, 0.0)

    def _read(self) -> tuple[int | None, float, float, float]:
        return (_rchar(self._broker_pid), process_cpu_s(self._broker_pid), self._lake.cpu_s(),
                time.process_time())

    def start(self) -> None:
        self._start = self._read()

    def stop(self, run: Run) -> None:
        end = self._read()
        if end[0] is not None and self._start[0] is not None:
            run.wire_bytes_in = end[0] - self._start[0]
        run.broker_cpu_s = end[1] - self._start[1]
        run.lake_cpu_s = end[2] - self._start[2]
        run.cpu_s = end[3] - self._start[3]


def _rchar(pid: int | None) -> int | None:
    """Bytes a process read through read(2) and friends, sockets included."""
    if pid is None:
        return None
    try:
        for line in Path(f"/proc/{pid}/io").read_text().splitlines():
            if line.startswith("rchar:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def run_bare(credentials: LinkCredentials, batches: list[OutgoingBatch], counters: Counters,
             *, flow_control: bool = False) -> Run:
    """The reference: pre-built payloads, QoS 1, at most 100 in flight; without flow control
    unless asked (then the SDK's IoT Core limits, as for ours)."""
    link = connect_mqtt5(credentials, f"{STORE}-bare", flow_control=flow_control)
    topic = uplink_topic(STORE)
    run = Run("bare awscrt publisher, IoT Core limits (reference)" if flow_control
              else "bare awscrt publisher (reference)")
    pending: deque[tuple[OutgoingBatch, Any]] = deque()
    client = link.client
    assert client is not None
    counters.start()
    began = time.time()
    todo = iter(batches)
    more = True
    try:
        while more or pending:
            while more and len(pending) < MAX_IN_FLIGHT:
                batch = next(todo, None)
                if batch is None:
                    more = False
                    break
                packet = mqtt5.PublishPacket(topic=topic, payload=batch.payload,
                                             qos=mqtt5.QoS.AT_LEAST_ONCE)
                pending.append((batch, client.publish(packet)))
            batch, future = pending.popleft()
            puback = future.result(RUN_TIMEOUT_S).puback
            if puback is not None and int(puback.reason_code) >= 0x80:
                raise RuntimeError(f"the broker refused a batch: {puback.reason_code!r}")
            run.events += batch.events
            run.batches += 1
            run.payload_bytes += len(batch.payload)
        run.seconds = time.time() - began
        counters.stop(run)
    finally:
        link.stop()
    run.phases_s["started_at"] = began
    return run


def _thread_sched() -> tuple[float, float]:
    """The calling thread's CPU seconds and its seconds runnable but not running (waiting
    for a core: a busy machine), from the kernel's schedstat; the GIL is not in either."""
    try:
        fields = Path("/proc/thread-self/schedstat").read_text().split()
        return int(fields[0]) / 1e9, int(fields[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return time.thread_time(), 0.0


class TimedOutbox:
    """The real Outbox as the publisher's batch source, with the publisher thread's time in
    each call counted; `cap_seq` stops handing out batches after that seq."""

    def __init__(self, outbox: Outbox, cap_seq: int | None = None) -> None:
        self._outbox = outbox
        self._cap = cap_seq
        self.started_at: float | None = None
        self.cut_s = 0.0
        self.cut_cpu_s = 0.0  # the publisher thread's own CPU in the cut
        self.cut_runqueue_s = 0.0  # ... and its time runnable but waiting for a core
        self.ack_s = 0.0

    def cursor(self) -> int:
        return self._outbox.cursor()

    def next_batch(self, after_seq: int) -> OutgoingBatch | None:
        if self._cap is not None and after_seq >= self._cap:
            return None
        began, (cpu, queued) = time.perf_counter(), _thread_sched()
        if self.started_at is None:
            self.started_at = time.time()
        batch = self._outbox.next_batch(after_seq)
        self.cut_s += time.perf_counter() - began
        cpu_after, queued_after = _thread_sched()
        self.cut_cpu_s += cpu_after - cpu
        self.cut_runqueue_s += queued_after - queued
        return batch

    def acknowledge(self, seq: int) -> None:
        began = time.perf_counter()
        self._outbox.acknowledge(seq)
        self.ack_s += time.perf_counter() - began


def run_ours(name: str, credentials: LinkCredentials, db_path: Path, last_seq: int,
             counters: Counters, *, flow_control: bool) -> Run:
    """The store's uplink from cursor 0 up to `last_seq`, timed from its first cut to the
    PUBACK that moves the cursor there."""
    reset_cursor(db_path)
    conn = open_database(db_path, synchronous="FULL", check_same_thread=False).conn
    source = TimedOutbox(Outbox(conn, STORE, PSEUDONYM_KEY), cap_seq=last_seq)
    done = threading.Event()
    finished: list[float] = []

    def delivered(batch: OutgoingBatchLike) -> None:
        if batch.last_seq >= last_seq and not finished:
            finished.append(time.time())
            done.set()

    publisher = BatchPublisher(credentials, source, flow_control=flow_control,
                               on_delivered=delivered)
    counters.start()
    publisher.start()
    try:
        if not done.wait(RUN_TIMEOUT_S):
            raise TimeoutError(f"{name}: the cursor did not reach {last_seq}"
                               f" ({publisher.stats.events} events sent)")
    finally:
        publisher.stop()
        conn.close()
    run = Run(name, publisher.stats.events, publisher.stats.batches, publisher.stats.bytes)
    counters.stop(run)
    assert source.started_at is not None
    run.seconds = finished[0] - source.started_at
    run.phases_s = {"started_at": source.started_at, "cut (Outbox.next_batch)": source.cut_s,
                    "  of which the thread's CPU": source.cut_cpu_s,
                    "  of which waiting for a core": source.cut_runqueue_s,
                    "acknowledge (cursor commit)": source.ack_s,
                    "publish + wait for PUBACKs": run.seconds - source.cut_s - source.ack_s}
    if publisher.stats.refused or publisher.stats.resent_from_cursor:
        raise RuntimeError(f"{name}: {publisher.stats}")
    return run


# -- the lake -----------------------------------------------------------------------------------


def empty_lake(s3: Any) -> None:
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=LAKE_BUCKET):
        keys = [{"Key": item["Key"]} for item in page.get("Contents", ())]
        if keys:
            s3.delete_objects(Bucket=LAKE_BUCKET, Delete={"Objects": keys, "Quiet": True})


def check_lake(lake: Lake, expected: set[str]) -> dict[str, Any]:
    """Compact every partition, then compare the lake's event ids with the database's."""
    began = time.perf_counter()
    results = [lake.compact(p) for p in lake.partitions(store_id=STORE)]
    ids = lake.read(store_id=STORE)["event_id"].to_pylist()
    after = sum(r.rows_after for r in results)
    unique = set(ids)
    return {"partitions": len(results), "objects_before": sum(r.objects_before for r in results),
            "rows_before_compaction": sum(r.rows_before for r in results),
            "rows_after_compaction": after, "distinct_event_ids": len(unique),
            "lost": len(expected - unique), "unexpected": len(unique - expected),
            "duplicated_before_compaction": sum(r.rows_before for r in results) - len(unique),
            "duplicated": after - len(unique), "seconds": time.perf_counter() - began}


# -- reporting ----------------------------------------------------------------------------------


def day_projection(limited: Run, ours: Run) -> dict[str, Any]:
    """Time to send a busy store's day under IoT Core's limits: measured rate, and the bound
    from the unlimited run's bytes per event and events per batch."""
    by_bytes = DAY_EVENTS * ours.payload_bytes_per_event / IOT_BYTES_PER_S
    by_publishes = DAY_EVENTS / ours.events_per_batch / IOT_PUBLISHES_PER_S
    return {"day_events": DAY_EVENTS,
            "measured_events_per_s": limited.events_per_s,
            "projected_day_s_at_measured_rate": DAY_EVENTS / limited.events_per_s,
            "bound_by_bytes_s": by_bytes, "bound_by_publishes_s": by_publishes,
            "bound_day_s": max(by_bytes, by_publishes), "target_s": TARGET_DAY_S}


def _loads(loads: tuple[float, float, float]) -> str:
    return "/".join(f"{x:.1f}" for x in loads)


def print_report(report: dict[str, Any]) -> None:
    runs = [Run(**{k: v for k, v in r.items() if k in Run.__dataclass_fields__})
            for r in report["runs"]]
    reference = runs[0].events_per_s
    print(f"\nmachine: {report['machine']['cpus']} cores, {report['machine']['cpu']},"
          f" Python {report['machine']['python']}; load average (1, 5, 15 min)"
          f" {_loads(report['machine']['load_avg'])} at start,"
          f" {_loads(report['machine']['load_avg_end'])} at end")
    backlog = report["backlog"]
    print(f"backlog: {backlog['events']:,} events written in {backlog['seconds']:.1f} s"
          f" ({backlog['events'] / backlog['seconds']:,.0f}/s), mix {backlog['mix']},"
          f" {backlog['consenting']} of {backlog['customers']} shoppers consenting\n")
    print("| run | events | batches | events/batch | s | events/s | ratio | payload B/event"
          " | wire B/event | CPU µs/event (publisher) | broker CPU s | lake CPU s"
          " | lake done s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for run in runs:
        wire = run.wire_bytes_per_event
        lake = f"{run.lake_done_s:.2f}" if run.lake_done_s is not None else "–"
        print(f"| {run.name} | {run.events:,} | {run.batches:,} | {run.events_per_batch:,.0f}"
              f" | {run.seconds:.2f} | {run.events_per_s:,.0f}"
              f" | {run.events_per_s / reference:.3f} | {run.payload_bytes_per_event:.1f}"
              f" | {f'{wire:.1f}' if wire else '–'}"
              f" | {run.cpu_s / run.events * 1e6:.1f} | {run.broker_cpu_s:.1f}"
              f" | {run.lake_cpu_s:.1f} | {lake} |")
    print(f"\nreference runs: {', '.join(f'{x:.3f}' for x in report['bare_seconds'])} s"
          " (the median is in the table)")
    cut = report["cut_only"]
    print(f"\ncut only (Outbox.next_batch, no network): {cut['events']:,} events in"
          f" {cut['seconds']:.2f} s = {cut['events_per_s']:,.0f} events/s;"
          f" {cut['cpu_us_per_event']:.1f} µs of CPU per event")
    ours = runs[1]
    print("\nour uplink's thread (flow control off):")
    for phase, seconds in ours.phases_s.items():
        if phase != "started_at":
            print(f"  {phase:32} {seconds:7.2f} s  {seconds / ours.seconds:6.1%}")
    waited = ours.phases_s.get("  of which waiting for a core", 0.0)
    print(f"  without the wait for a core: {ours.events / (ours.seconds - waited):,.0f} events/s"
          f" ({ours.events / (ours.seconds - waited) / reference:.3f} of the reference)")
    profile = report["cut_profile"]
    print(f"\ncProfile of the cut ({profile['events']:,} events, {profile['batches']} batches;"
          f" {profile['rows_parsed_per_event_sent']:.2f} rows parsed per event sent,"
          f" {profile['encodings_per_batch']:.2f} encodings per batch):")
    for category, share in profile["share"].items():
        print(f"  {category:36} {share:6.1%}  ~{share * cut['cpu_us_per_event']:5.1f}"
              " µs CPU/event")
    what_if = report["what_if"]
    print(f"what if (cut only, first {profile['events']:,} events, best of"
          f" {WHAT_IF_ROUNDS}):")
    for name, variant in what_if.items():
        print(f"  {name:44} {variant['events_per_s']:9,.0f} events/s,"
              f" {variant['events_per_cpu_s']:9,.0f} per CPU-second,"
              f" {variant['payload_bytes_per_event']:.1f} B/event")
    lake = report["lake"]
    print(f"\nlake (ours, after compacting {lake['partitions']} partitions of"
          f" {lake['objects_before']} objects): {lake['rows_after_compaction']:,} rows,"
          f" {lake['distinct_event_ids']:,} distinct event ids; lost {lake['lost']},"
          f" duplicated {lake['duplicated']} (before compaction"
          f" {lake['duplicated_before_compaction']}), unexpected {lake['unexpected']}")
    day = report["day"]
    print(f"\nunder IoT Core's limits: measured {day['measured_events_per_s']:,.0f} events/s;"
          f" a busy store's day ({DAY_EVENTS:,} events) projected at that rate:"
          f" {day['projected_day_s_at_measured_rate'] / 60:.1f} min; bound from bytes/event"
          f" and batch size: max({day['bound_by_bytes_s']:.0f} s by 512 KiB/s,"
          f" {day['bound_by_publishes_s']:.0f} s by 100 publishes/s) ="
          f" {day['bound_day_s'] / 60:.1f} min (target {TARGET_DAY_S / 60:.0f} min)")
    print(f"ratio ours / bare: {report['ratio']:.3f} to the PUBACK (target {TARGET_RATIO});"
          f" {report['lake_ratio']:.3f} to the last event written in the lake;"
          f" {report['limited_ratio']:.3f} with IoT Core's limits on both")


# -- main ---------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=DEFAULT_EVENTS)
    parser.add_argument("--limited-events", type=int, default=DEFAULT_LIMITED_EVENTS,
                        help="events drained under IoT Core's limits (flow control on)")
    parser.add_argument("--bare-repeats", type=int, default=3,
                        help="runs of the reference; the median is reported")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON here")
    args = parser.parse_args(argv)
    report: dict[str, Any] = {"benchmark": "uplink", "machine": machine()}
    with tempfile.TemporaryDirectory(prefix="bench-uplink-") as tmp:
        workdir = Path(tmp)
        db_path = workdir / "store.db"
        log(f"writing a backlog of {args.events:,} events ...")
        report["backlog"] = build_backlog(db_path, args.events)
        expected, last_seq = event_ids(db_path)
        log("cutting the batches in memory ...")
        batches, cut_s, cut_cpu_s = cut_all(db_path)
        sent = sum(b.events for b in batches)
        report["cut_only"] = {"events": sent, "batches": len(batches), "seconds": cut_s,
                              "events_per_s": sent / cut_s, "cpu_s": cut_cpu_s,
                              "cpu_us_per_event": cut_cpu_s / sent * 1e6}
        sample = min(PROFILE_SAMPLE_EVENTS, args.events)
        report["cut_profile"] = profile_cut(db_path, sample)
        report["what_if"] = what_if_cut(db_path, sample, WHAT_IF_MAX_EVENTS)

        with LocalCloud(workdir / "cloud") as cloud:
            credentials = cloud.credentials(STORE, workdir / "credentials")
            s3 = cloud.boto3_client("s3")
            lake_worker = LakeWorkerProcess(cloud.directory)
            lake_worker.start()
            # The broker's pid, to read its socket bytes and CPU (no public accessor).
            process = getattr(cloud.broker, "_process", None)
            counters = Counters(process.pid if process is not None else None, lake_worker)
            try:
                # The reference takes well under a second: repeat it (each time until the
                # lake has it all) and keep the median, as one run is at the machine's mercy.
                repeats = []
                for n in range(args.bare_repeats):
                    log(f"reference: bare awscrt publisher ({n + 1}/{args.bare_repeats}) ...")
                    base = lake_worker.events.value
                    repeats.append(run_bare(credentials, batches, counters))
                    repeats[-1].lake_done_s = (lake_worker.wait_for(base + sent)
                                               - repeats[-1].phases_s.pop("started_at"))
                bare = sorted(repeats, key=lambda r: r.seconds)[len(repeats) // 2]
                report["bare_seconds"] = [r.seconds for r in repeats]
                # Under IoT Core's limits the reference sends the same first batches that
                # our limited run sends below: a ratio where the link binds both.
                limited_batches, count = [], 0
                for batch in batches:
                    if count >= min(args.limited_events, args.events):
                        break
                    limited_batches.append(batch)
                    count += batch.events
                log("reference under IoT Core's limits ...")
                base = lake_worker.events.value
                bare_limited = run_bare(credentials, limited_batches, counters,
                                        flow_control=True)
                bare_limited.lake_done_s = (lake_worker.wait_for(base + count)
                                            - bare_limited.phases_s.pop("started_at"))
                empty_lake(s3)  # the lake check below is about our uplink alone
                del batches, limited_batches

                log("our uplink, flow control off ...")
                base = lake_worker.events.value
                ours = run_ours("our uplink (Outbox + BatchPublisher)", credentials, db_path,
                                last_seq, counters, flow_control=False)
                ours.lake_done_s = (lake_worker.wait_for(base + ours.events)
                                    - ours.phases_s["started_at"])
                log("checking the lake ...")
                report["lake"] = check_lake(Lake(s3, LAKE_BUCKET), expected)

                limited_seq = nth_seq(db_path, min(args.limited_events, args.events))
                log(f"our uplink under IoT Core's limits, up to seq {limited_seq:,} ...")
                base = lake_worker.events.value
                limited = run_ours("our uplink, IoT Core limits (flow control on)",
                                   credentials, db_path, limited_seq, counters,
                                   flow_control=True)
                limited.lake_done_s = (lake_worker.wait_for(base + limited.events)
                                       - limited.phases_s["started_at"])
                report["lake_dead_letters"] = lake_worker.dead.value
            finally:
                lake_worker.stop()
    for run in (ours, limited):
        run.phases_s.pop("started_at", None)
    report["runs"] = [run.to_dict() for run in (bare, ours, bare_limited, limited)]
    report["ratio"] = ours.events_per_s / bare.events_per_s
    report["limited_ratio"] = limited.events_per_s / bare_limited.events_per_s
    # End to end: both timed to the lake worker's last write (its own pace bounds the bare run).
    assert ours.lake_done_s is not None and bare.lake_done_s is not None
    report["lake_ratio"] = (ours.events / ours.lake_done_s) / (bare.events / bare.lake_done_s)
    report["day"] = day_projection(limited, ours)
    report["machine"]["load_avg_end"] = os.getloadavg()
    print_report(report)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, default=str))
    lake = report["lake"]
    return 0 if lake["lost"] == 0 and lake["duplicated"] == 0 and lake["unexpected"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
