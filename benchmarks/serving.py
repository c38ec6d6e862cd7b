"""Serving latency: a realistic request mix at a fixed rate while the store ingests events.

    python benchmarks/serving.py [--shoppers 20000] [--days 46] [--rate 300] [--duration 60]
                                 [--ingest-rate 1000] [--workers 2] [--json PATH] [--cache DIR]

Builds (once; cached under --cache) a store of 20,000 shoppers and ~2 million line items of
history through the real writer path (validation, sales, shopper features), trains a small
bundle, then runs the agent (`edge-agent run --workers N`) and the simulator
(`edge-agent simulate`) as processes. Requests are sent open-loop on a fixed schedule from
their own process (`http_load.py`); latency is measured from the scheduled send time, so a
slow server cannot hide its queueing. `/healthz` of the same app, in the same mix, is the
reference. Also printed: the CPU each process used during the run, and the shopper memo's
hit rate.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cpu_usage import cpu_by_role, distinct_resident_mb, memory_of, processes_by_role
from http_load import LoadResult, Request, Sample, fixed_rate_schedule, run_load

from edge_agent.broker import MosquittoBroker, MosquittoConfig, free_port, wait_for_port
from edge_agent.demo.catalog import generate_catalog
from edge_agent.demo.seed import seed_demo_data
from edge_agent.demo.shoppers import generate_shoppers
from edge_agent.features.store import ensure_features_current
from edge_agent.simulator.history import generate_history
from edge_agent.storage import open_database
from edge_agent.storage.event_writer import EventWriter, RawMessage
from edge_agent.store_training import sign_store_bundle, train_store_models

STORE = "bench-store"
SEED = 0
KEYS = {"kiosk": "bench-kiosk-key-000000", "display": "bench-display-key-0000",
        "staff": "bench-staff-key-000000", "admin": "bench-admin-key-000000"}
BUILD_BATCH = 2000
WARMUP_S = 5.0
REFERENCE = "GET /healthz"
# Where each child process of the agent counts in the CPU table (by its command line).
CHILD_ROLES = {"edge_agent.ingestion.writer_process": "ingestion writer process",
               "edge_agent.api.worker": "HTTP workers"}
SIMULATOR_NICENESS = 10
STOP_GRACE_S = 30


@dataclass(frozen=True)
class Endpoint:
    name: str
    weight: float
    role: str
    path: str  # may contain {customer} and {product}


MIX = (
    Endpoint("GET /v1/shoppers/{id}/recommendations", 0.25, "kiosk",
             "/v1/shoppers/{customer}/recommendations?context=kiosk"),
    Endpoint("GET /v1/shoppers/{id}/shopping-list", 0.25, "kiosk",
             "/v1/shoppers/{customer}/shopping-list"),
    Endpoint("GET /v1/shoppers/{id}/purchase-timing", 0.05, "kiosk",
             "/v1/shoppers/{customer}/purchase-timing"),
    Endpoint("GET /v1/shoppers/{id}/shopping-list/route", 0.05, "kiosk",
             "/v1/shoppers/{customer}/shopping-list/route"),
    Endpoint("GET /v1/shoppers/lookup", 0.05, "kiosk",
             "/v1/shoppers/lookup?loyalty_number={loyalty}"),
    Endpoint("GET /v1/trending", 0.05, "display", "/v1/trending"),
    Endpoint("GET /v1/displays/{zone}/content", 0.05, "display", "/v1/displays/{zone}/content"),
    Endpoint("GET /v1/products/{id}/similar", 0.05, "kiosk", "/v1/products/{product}/similar"),
    Endpoint("GET /v1/staff/restock-alerts", 0.03, "staff", "/v1/staff/restock-alerts"),
    Endpoint("GET /v1/staff/shoppers/{id}/insights", 0.02, "staff",
             "/v1/staff/shoppers/{customer}/insights"),
    Endpoint(REFERENCE, 0.15, "kiosk", "/healthz"),
)


# ------------------------------------------------------------------------------ the store
def build_store(db_path: Path, shoppers: int, days: int) -> dict[str, int]:
    """Catalog, shoppers and their purchase history, written through the real writer."""
    catalog = generate_catalog(SEED, 3000)
    people = generate_shoppers(catalog, shoppers, SEED)
    db = open_database(db_path, synchronous="NORMAL")
    ensure_features_current(db.conn)  # an empty store: records which feature code writes
    seed_demo_data(db, catalog, people)
    writer = EventWriter(db, store_id=STORE, max_payload_bytes=1 << 20,
                         dead_letter_max_raw_bytes=1024)
    batch: list[RawMessage] = []
    sales = lines = 0
    for event, register in generate_history(catalog, people, store_id=STORE, days=days,
                                            seed=SEED):
        batch.append(RawMessage(f"stores/{STORE}/pos/{register}",
                                event.model_dump_json().encode()))
        sales += 1
        lines += len(event.items)
        if len(batch) >= BUILD_BATCH:
            writer.write_batch(batch)
            batch = []
    if batch:
        writer.write_batch(batch)
    db.close()
    return {"shoppers": shoppers, "sales": sales, "line_items": lines}


def cached_store(cache: Path, shoppers: int, days: int) -> tuple[Path, dict[str, int]]:
    key = f"store-{shoppers}-{days}-{SEED}"
    db_path, summary_path = cache / f"{key}.db", cache / f"{key}.json"
    if not summary_path.exists():
        cache.mkdir(parents=True, exist_ok=True)
        started = time.time()
        print(f"building the store ({shoppers} shoppers, {days} days of history) ...",
              flush=True)
        summary = build_store(db_path, shoppers, days)
        summary["build_s"] = round(time.time() - started)
        summary_path.write_text(json.dumps(summary))
    return db_path, json.loads(summary_path.read_text())


def sample_targets(db_path: Path, count: int = 2000) -> dict[str, list[str]]:
    conn = sqlite3.connect(db_path)
    try:
        customers = conn.execute(
            # Devices name shoppers by their opaque id (what a loyalty-number lookup gives).
            "SELECT c.shopper_ref, c.loyalty_number FROM customers c JOIN shopper_features f"
            " USING (customer_id) WHERE c.consent_personalization AND c.consent_staff_assist"
            " ORDER BY random() LIMIT ?", (count,)).fetchall()
        products = [r[0] for r in conn.execute(
            "SELECT product_id FROM products ORDER BY random() LIMIT ?", (count,))]
    finally:
        conn.close()
    from store_layouts import load_layout

    zones = sorted(load_layout("supermarket").zones)
    return {"customer": [c for c, _ in customers], "loyalty": [n for _, n in customers],
            "product": products, "zone": zones}


# ------------------------------------------------------------------------------ the load
def request_mix(targets: dict[str, list[str]], count: int, seed: int) -> list[Request]:
    """`count` requests drawn from MIX by weight, each for a random shopper/product/zone."""
    rng = random.Random(seed)
    weights = [e.weight for e in MIX]
    requests = []
    for endpoint in rng.choices(MIX, weights, k=count):
        pick = {k: rng.choice(v) for k, v in targets.items()}
        requests.append(Request(endpoint.name, endpoint.path.format(**pick),
                                (("X-API-Key", KEYS[endpoint.role]),)))
    return requests


def play(port: int, targets: dict[str, list[str]], rate: float, duration_s: float,
         seed: int) -> LoadResult:
    requests = request_mix(targets, int(rate * duration_s), seed)
    return run_load("127.0.0.1", port, fixed_rate_schedule(requests, rate))


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] if ordered else 0.0


def summarize(samples: list[Sample], duration_s: float) -> list[dict[str, float | str | int]]:
    by_endpoint: dict[str, list[Sample]] = defaultdict(list)
    for sample in samples:
        by_endpoint[sample.name].append(sample)
    rows = []
    for endpoint in [e.name for e in MIX]:
        group = by_endpoint.get(endpoint, [])
        latencies = [s.latency_ms for s in group if s.status == 200]
        rows.append({"endpoint": endpoint, "requests": len(group),
                     "rps": round(len(group) / duration_s, 1),
                     "errors": sum(1 for s in group if s.status != 200),
                     "p50_ms": round(percentile(latencies, 50), 2),
                     "p95_ms": round(percentile(latencies, 95), 2),
                     "p99_ms": round(percentile(latencies, 99), 2),
                     "max_ms": round(max(latencies, default=0.0), 2)})
    return rows


def print_table(rows: list[dict], context: dict) -> None:
    reference = next(r for r in rows if r["endpoint"] == REFERENCE)
    print(f"store: {context['shoppers']:,} shoppers, {context['line_items']:,} line items "
          f"({context['sales']:,} sales); offered {context['rate']} req/s for "
          f"{context['duration_s']} s to {context['http_workers']} HTTP workers; ingest "
          f"{context['ingest_events_per_s']:,.0f} events/s committed during the run")
    header = (f"| {'endpoint':40} | {'req':>6} | {'req/s':>6} | {'err':>4} | {'p50 ms':>7} | "
              f"{'p95 ms':>7} | {'p99 ms':>7} | {'max ms':>7} | {'p99/ref':>7} |")
    print(header)
    print("|" + "|".join("-" * len(c) for c in header.split("|")[1:-1]) + "|")
    for r in rows:
        ratio = r["p99_ms"] / reference["p99_ms"] if reference["p99_ms"] else float("nan")
        print(f"| {r['endpoint']:40} | {r['requests']:>6} | {r['rps']:>6} | {r['errors']:>4} | "
              f"{r['p50_ms']:>7.2f} | {r['p95_ms']:>7.2f} | {r['p99_ms']:>7.2f} | "
              f"{r['max_ms']:>7.2f} | {ratio:>7.2f} |")


def metrics_text(port: int) -> str:
    return urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()


def memo_hit_rates(port: int) -> dict[str, float]:
    """Share of the shopper memo's lookups that were hits, per kind, from `/metrics`."""
    text = metrics_text(port)
    counts: dict[str, dict[str, float]] = defaultdict(dict)
    for kind, result, value in re.findall(
            r'edge_shopper_memo_lookups_total\{kind="(\w+)",result="(\w+)"\} ([0-9.e+]+)', text):
        counts[kind][result] = float(value)
    return {kind: c.get("hit", 0.0) / max(sum(c.values()), 1.0) for kind, c in counts.items()}


def server_histograms(port: int) -> dict[str, dict[float, float]]:
    """Per route, the workers' own latency histogram (`edge_http_request_seconds`, 200s):
    upper bound in seconds -> requests at most that slow, from `/metrics`."""
    text = metrics_text(port)
    histograms: dict[str, dict[float, float]] = defaultdict(dict)
    # Label values hold braces themselves ("/v1/shoppers/{customer_id}/...").
    bucket = re.compile(r'edge_http_request_seconds_bucket\{((?:[^"}]|"[^"]*")*)\} ([0-9.e+]+)')
    for labels, value in bucket.findall(text):
        found = dict(re.findall(r'(\w+)="([^"]*)"', labels))
        if found.get("status") == "200" and found.get("method") == "GET":
            histograms[found["route"]][float(found["le"])] = float(value)
    return histograms


def server_side(before: dict[str, dict[float, float]], after: dict[str, dict[float, float]]
                ) -> dict[str, dict[str, float]]:
    """Per route, of the measured run's requests: the share that took the worker over 10 and
    over 20 ms from reading the request to the last byte of the answer. Beside the client's
    view this tells a slow handler from a request kept waiting before its handler ran."""
    shares = {}
    for route, buckets in after.items():
        counts = {le: n - before.get(route, {}).get(le, 0.0) for le, n in buckets.items()}
        total = counts.get(float("inf"), 0.0)
        if total:
            shares[route] = {"requests": total,
                             "over_10_ms": 1 - counts.get(0.01, 0.0) / total,
                             "over_20_ms": 1 - counts.get(0.02, 0.0) / total}
    return shares


def print_memory_table(memory: list[tuple[str, int, float, float]],
                       distinct: float | None) -> None:
    """Every process of the agent: resident and proportional memory (shared pages split),
    and the resident pages of all of them counted once (None: not readable here)."""
    print("\nMemory of the agent's processes at the end of the run (MB):")
    print(f"| {'process':28} | {'pid':>7} | {'resident':>8} | {'proportional':>12} |")
    print(f"|{'-' * 30}|{'-' * 9}|{'-' * 10}|{'-' * 14}|")
    for role, pid, rss, pss in memory:
        print(f"| {role:28} | {pid:>7} | {rss:>8.0f} | {pss:>12.0f} |")
    print(f"| {'the whole agent':28} | {'':>7} | {sum(m[2] for m in memory):>8.0f} |"
          f" {sum(m[3] for m in memory):>12.0f} |")
    if distinct is not None:
        print(f"The whole agent's resident pages, each counted once: {distinct:.0f} MB.")


def print_cpu_table(cpu_percent: dict[str, float]) -> None:
    print(f"\nCPU during the measured run, % of one core ({os.cpu_count()} cores):")
    print(f"| {'process':28} | {'CPU %':>6} |")
    print(f"|{'-' * 30}|{'-' * 8}|")
    for role, percent in sorted(cpu_percent.items(), key=lambda item: -item[1]):
        print(f"| {role:28} | {percent:>6.1f} |")
    print(f"| {'all of the above':28} | {sum(cpu_percent.values()):>6.1f} |")


# ------------------------------------------------------------------------------ the run
def _features_current(db_path: Path) -> None:
    """If the feature code changed since the store was cached, rebuild its shopper features
    here, before the agent starts (where it would delay start-up)."""
    db = open_database(db_path, synchronous="NORMAL")
    try:
        if ensure_features_current(db.conn):
            print("rebuilt shopper features for the current feature code", flush=True)
    finally:
        db.close()


def _events(db_path: Path) -> int:
    with sqlite3.connect(db_path) as conn:
        return conn.execute("SELECT count(*) FROM events").fetchone()[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shoppers", type=int, default=20_000)
    parser.add_argument("--days", type=int, default=46)
    parser.add_argument("--rate", type=float, default=300.0, help="requests per second")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds measured")
    parser.add_argument("--ingest-rate", type=float, default=1000.0, help="events per second")
    parser.add_argument("--workers", type=int, default=2, help="the agent's HTTP workers")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "edge-bench")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)

    # SIGTERM (a CI time limit, a terminal closing) must still stop the agent and simulator.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    store_db, summary = cached_store(args.cache, args.shoppers, args.days)
    _features_current(store_db)
    models_dir = train_store_models(store_db, store_db.with_suffix(".models"), SEED)
    with tempfile.TemporaryDirectory(prefix="bench-serving-") as tmp:
        work = Path(tmp)
        db_path = work / "edge.db"
        shutil.copy(store_db, db_path)
        bundle, public_key = sign_store_bundle(models_dir, work / "keys", work / "bundle",
                                               "bench-1")
        targets = sample_targets(db_path)
        port = free_port()
        with MosquittoBroker(config_dir=work / "mosquitto",
                             config=MosquittoConfig(persistence=False)) as broker:
            env = {**os.environ, "EDGE_API_KEYS": json.dumps(
                [{"name": f"bench-{r}", "role": r, "key": k} for r, k in KEYS.items()]),
                "EDGE_MODEL_PUBLIC_KEY": str(public_key), "EDGE_MODEL_BUNDLE": str(bundle)}
            agent = subprocess.Popen(
                [sys.executable, "-m", "edge_agent.cli", "run", "--store-id", STORE,
                 "--broker", broker.url, "--db", str(db_path), "--port", str(port),
                 "--log-level", "WARNING", "--workers", str(args.workers)], env=env,
                stdin=subprocess.DEVNULL)
            simulator = None
            try:
                if not wait_for_port("127.0.0.1", port, timeout=120):
                    raise RuntimeError("the agent did not start serving")
                # The simulator stands in for the store's sensors and tills, which are other
                # devices in a real store; here it shares the two cores, so it runs at a
                # lower priority than the agent (it still has to deliver --ingest-rate, which
                # is measured as events committed).
                simulator = subprocess.Popen(
                    ["nice", "-n", str(SIMULATOR_NICENESS), sys.executable, "-m",
                     "edge_agent.cli", "simulate", "--store-id", STORE,
                     "--broker", broker.url, "--rate", str(args.ingest_rate),
                     "--shoppers", str(min(args.shoppers, 2000)), "--seed", str(SEED),
                     "--log-level", "WARNING"], stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL)
                play(port, targets, args.rate, WARMUP_S, seed=0)
                roots = {"agent process (ingestion)": agent.pid, "simulator": simulator.pid,
                         "mosquitto": broker.pid or 0}
                cpu_before = cpu_by_role(roots, CHILD_ROLES)
                histograms_before = server_histograms(port)
                events_before, started = _events(db_path), time.time()
                load = play(port, targets, args.rate, args.duration, seed=1)
                elapsed = time.time() - started
                ingest_rate = (_events(db_path) - events_before) / elapsed
                cpu_after = cpu_by_role(roots, CHILD_ROLES)
                cpu = {role: (cpu_after[role] - cpu_before.get(role, 0.0)) / elapsed
                       for role in cpu_after}
                cpu["load generator"] = load.cpu_s / elapsed
                agent_roots = {"agent process (ingestion)": agent.pid}
                memory = [(role, pid, *memory_of(pid))
                          for role, pid in processes_by_role(agent_roots, CHILD_ROLES)]
                distinct = distinct_resident_mb([pid for _, pid, _, _ in memory])
                memo = memo_hit_rates(port)
                handled = server_side(histograms_before, server_histograms(port))
            finally:
                for process in (simulator, agent):
                    if process is not None:
                        process.terminate()
                        try:
                            process.wait(STOP_GRACE_S)
                        except subprocess.TimeoutExpired:
                            process.kill()
                            process.wait()
    rows = summarize(load.samples, args.duration)
    context = {**summary, "rate": args.rate, "duration_s": args.duration,
               "http_workers": args.workers,
               "ingest_events_per_s": round(ingest_rate),
               "measured_at": datetime.now(UTC).isoformat(timespec="seconds")}
    print_table(rows, context)
    cpu_percent = {role: round(share * 100, 1) for role, share in cpu.items()}
    print_cpu_table(cpu_percent)
    print_memory_table(memory, distinct)
    print("shopper memo hit rate (warm-up included): " + ", ".join(
        f"{kind} {rate:.0%}" for kind, rate in memo.items()))
    print("time in the worker (from reading the request to the answer's last byte), share"
          " of requests over 10 / 20 ms: " + ", ".join(
              f"{route} {h['over_10_ms']:.2%} / {h['over_20_ms']:.2%}"
              for route, h in sorted(handled.items()) if "shoppers/{" in route
              or route == "/healthz"))
    if args.json:
        args.json.write_text(json.dumps({"benchmark": "serving", "context": context,
                                         "endpoints": rows, "cpu_percent_of_one_core":
                                         cpu_percent, "shopper_memo_hit_rate": memo,
                                         "time_in_worker": handled,
                                         "memory_mb": [{"role": role, "pid": pid,
                                                        "rss": round(rss), "pss": round(pss)}
                                                       for role, pid, rss, pss in memory],
                                         "agent_distinct_resident_mb":
                                             None if distinct is None else round(distinct)},
                                        indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
