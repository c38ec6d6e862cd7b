"""Storage: how big the store database gets at a busy store's rates, and that retention levels
it off.

    python benchmarks/storage.py [--days 60] [--scale 0.01] [--json PATH]

1. Bytes per event by type: N events of one type written through the ingestion writer into
   a fresh database, checkpointed; the file's growth divided by N (exact, whatever the
   scale), split by table with SQLite's `dbstat` table (which the benchmark needs).
2. A simulated store for `--days` days, time-compressed: every simulated day is written
   through the ingestion writer with its clock (and the events' `ts`) on that day, at
   `--scale` times a busy store's rates, and `purge_once` runs as the agent runs it (every
   `purge_interval_s / scale` simulated seconds, so each call deletes as many rows as the
   agent's would at full rates). The timeline ends at today's midnight (UTC). Sizes are
   extrapolated ×1/scale per table; per-product daily totals as at full rates, where every
   product sells every day; catalog, customers, shopper features and the WAL as measured.
3. The steady state at full rates with the default retention, a full `retention_sales_days`
   of sales included, from the bytes per event of step 1. Goal: the level settles, and the estimate
   stays under 10 GB.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import sqlite3
import sys
import tempfile
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import sqlite_utils

from edge_agent.demo.catalog import generate_catalog
from edge_agent.demo.seed import seed_demo_data
from edge_agent.demo.shoppers import generate_shoppers
from edge_agent.demo.taxonomy import DEPARTMENTS
from edge_agent.features.shopper import SaleLine, ShopperFeatures
from edge_agent.settings import Settings, load_settings
from edge_agent.simulator.pos import REGISTERS, pos_event
from edge_agent.simulator.store import EXTRA_ZONES, LOOSE_UNIT_WEIGHT_G, SHELF_CAPACITIES, zone_id
from edge_agent.simulator.traffic import (
    DEMO_MODEL_VERSION,
    INTERACTION_ACTIONS,
    INTERACTION_CONTEXTS,
    INTERACTION_WEIGHTS,
    KIOSK_DEVICES,
    PROMOTION_DISCOUNTS,
    PROMOTION_RATE,
    WALK_IN_SHARE,
    Popularity,
)
from edge_agent.storage import open_database
from edge_agent.storage.database import WAL_AUTOCHECKPOINT_PAGES
from edge_agent.storage.event_writer import EventWriter, RawMessage
from edge_agent.storage.retention import PurgeResult, purge_once
from models.events import TYPE_TO_TOPIC_KIND, TimeBounds, event_to_json, topic_for

STORE = "bench-store"
# A busy store, events/s. Kiosk interactions are not in the list: the simulator's
# ratio, ~2 per opted-in visit that reports ~6 presence events, gives 0.6/s at 2 presence/s.
RATES = {"shelf.reading": 50.0, "zone.traffic": 5.0, "presence": 2.0,
         "pos.transaction": 0.3, "interaction": 0.6}
LINES_PER_SALE = 12
CUSTOMERS = 3000
# Events per type for the bytes-per-event measurement: enough that page granularity (4 KiB
# per b-tree) is far below 1% of the growth.
SAMPLE_EVENTS = {"shelf.reading": 20_000, "zone.traffic": 20_000, "presence": 20_000,
                 "interaction": 20_000, "pos.transaction": 4_000}
DEAD_LETTER_SAMPLE = 300
GOAL_BYTES = 10e9
# A level has settled when, from twice the longest short retention on (day 14 with the
# defaults), it stays within this share of itself.
SETTLED_WITHIN = 0.05
WRITER_LATENCY = timedelta(milliseconds=200)  # from an event's ts to the writer's clock
DAY_S = 86_400
SQLITE_PAGE_BYTES = 4096  # SQLite's default, which open_database keeps
# Tables by how long their rows stay (extrapolated ×1/scale), and the rest.
SHORT_KEPT = ("events", "zone_traffic", "presence", "dead_letters")
LONG_KEPT = {"interactions": ("interactions",), "sales": ("transactions", "transaction_items")}
DAILY_TOTALS = "product_daily_sales"
FEATURES = "shopper_features"
# One row per shelf, shopper or (product, day): bounded, whatever the number of events.
BOUNDED = ("shelf_state", FEATURES, DAILY_TOTALS)


class Traffic:
    """Messages as the store's devices send them (the simulator's ids, zones and devices)."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.catalog = generate_catalog(seed)
        self.shoppers = generate_shoppers(self.catalog, CUSTOMERS, seed)
        self.popularity = Popularity(self.catalog, self.rng)
        self.capacity = {p.product_id: self.rng.choice(SHELF_CAPACITIES) for p in self.catalog}
        self.zones = [EXTRA_ZONES[0], *(zone_id(d) for d in DEPARTMENTS), EXTRA_ZONES[1]]
        self.customers = [s.customer_id for s in self.shoppers]

    def _id(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def message(self, kind: str, ts: datetime) -> RawMessage:
        """A message of `kind` stamped `ts`: byte for byte the JSON `event_to_json` writes,
        built directly (but for sales), as building models would take a quarter of the run."""
        rng = self.rng
        fields: dict[str, Any]
        if kind == "pos.transaction":
            return self._sale(ts)
        if kind == "shelf.reading":
            product = rng.choice(self.catalog)
            capacity = self.capacity[product.product_id]
            quantity = rng.randint(0, capacity)
            device = f"SH-{product.product_id}"
            fields = {"product_id": product.product_id, "quantity": quantity,
                      "weight_g": (round(quantity * LOOSE_UNIT_WEIGHT_G, 1)
                                   if product.size == "loose" else None),
                      "capacity": capacity}
        elif kind == "zone.traffic":
            device = rng.choice(self.zones)
            fields = {"people": rng.randint(0, 40), "avg_dwell_s": round(rng.uniform(12, 250), 1)}
        elif kind == "presence":
            customer = rng.choice(self.customers)
            device = f"app-{customer}"
            fields = {"customer_id": customer, "zone_id": rng.choice(self.zones)}
        else:
            device = rng.choice(KIOSK_DEVICES)
            fields = {"customer_id": rng.choice(self.customers),
                      "action": rng.choices(INTERACTION_ACTIONS, INTERACTION_WEIGHTS)[0],
                      "product_id": self.popularity.draw(rng).product_id,
                      "context": rng.choice(INTERACTION_CONTEXTS),
                      "model_version": DEMO_MODEL_VERSION}
        payload = {"event_id": self._id(), "store_id": STORE,
                   "ts": ts.isoformat().replace("+00:00", "Z"), "type": kind, **fields}
        return RawMessage(f"stores/{STORE}/{TYPE_TO_TOPIC_KIND[kind]}/{device}",
                          orjson.dumps(payload))

    def _sale(self, ts: datetime) -> RawMessage:
        rng = self.rng
        products = {p.product_id: p for p in (self.popularity.draw(rng) for _ in range(40))}
        lines = []
        for product in list(products.values())[:LINES_PER_SALE]:
            quantity = rng.choices((1, 2, 3), (0.8, 0.15, 0.05))[0]
            discount = (quantity * product.price * rng.choice(PROMOTION_DISCOUNTS)
                        if rng.random() < PROMOTION_RATE else 0.0)
            lines.append((product.product_id, quantity, product.price, discount))
        customer = None if rng.random() < WALK_IN_SHARE else rng.choice(self.customers)
        event = pos_event(store_id=STORE, event_id=self._id(), ts=ts,
                          transaction_id=f"T-{self._id()}", customer_id=customer, lines=lines)
        return RawMessage(topic_for(event, rng.choice(REGISTERS)), event_to_json(event))


def writer(db: sqlite_utils.Database, settings: Settings, clock: list[datetime]) -> EventWriter:
    """EventWriter.from_settings, with the simulated clock injected."""
    return EventWriter(db, store_id=settings.store_id,
                       max_payload_bytes=settings.max_payload_bytes,
                       dead_letter_max_raw_bytes=settings.dead_letter_max_raw_bytes,
                       time_bounds=TimeBounds(settings.earliest_event_ts,
                                              timedelta(seconds=settings.max_clock_ahead_s)),
                       clock=lambda: clock[0])


def fresh_db(path: Path, traffic: Traffic) -> tuple[sqlite_utils.Database, Settings]:
    settings = load_settings(store_id=STORE, db=str(path))
    db = open_database(path, synchronous="NORMAL")  # sizes are the same as with FULL
    seed_demo_data(db, traffic.catalog, traffic.shoppers)
    return db, settings


def table_bytes(conn: sqlite3.Connection) -> dict[str, int]:
    """Bytes on disk per table, its indexes included, and the free pages."""
    sizes = dict(conn.execute(
        "SELECT coalesce(m.tbl_name, s.name), sum(s.pgsize) FROM dbstat s"
        " LEFT JOIN sqlite_master m ON m.name = s.name GROUP BY 1").fetchall())
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    sizes["(free pages)"] = conn.execute("PRAGMA freelist_count").fetchone()[0] * page_size
    return sizes


def has_dbstat() -> bool:
    try:
        sqlite3.connect(":memory:").execute("SELECT count(*) FROM dbstat")
    except sqlite3.OperationalError:
        return False
    return True


def file_bytes(path: Path) -> tuple[int, int]:
    wal = path.with_name(path.name + "-wal")
    return path.stat().st_size, wal.stat().st_size if wal.exists() else 0


def measure_type(workdir: Path, traffic: Traffic, kind: str, count: int) -> dict[str, Any]:
    """Bytes a stored event of `kind` adds to the database, by table."""
    path = workdir / f"bytes-{kind}.db"
    db, settings = fresh_db(path, traffic)
    conn = db.conn
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    before, tables_before = file_bytes(path)[0], table_bytes(conn)
    start = datetime.now(UTC) - timedelta(hours=2)
    clock = [start]
    write = writer(db, settings, clock)
    for first in range(0, count, 1000):
        clock[0] = start + timedelta(seconds=first)
        if kind == "dead letter":  # oversized junk: what a broken device floods
            batch = [RawMessage(f"stores/{STORE}/zone/entrance",
                                traffic.rng.randbytes(settings.max_payload_bytes + 1))
                     for _ in range(min(1000, count - first))]
        else:
            batch = [traffic.message(kind, clock[0]) for _ in range(min(1000, count - first))]
        write.write_batch(batch)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    grown = file_bytes(path)[0] - before
    tables_after = table_bytes(conn)
    by_table = {t: (n - tables_before.get(t, 0)) / count
                for t, n in tables_after.items() if n != tables_before.get(t, 0)}
    daily_rows = conn.execute(f"SELECT count(*) FROM {DAILY_TOTALS}").fetchone()[0]
    conn.close()
    path.unlink()
    return {"type": kind, "events": count, "file_bytes_per_event": grown / count,
            "by_table": by_table, "daily_total_rows": daily_rows}


def simulate(workdir: Path, traffic: Traffic, days: int, scale: float, report_every: int,
             log: Any) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    path = workdir / "store.db"
    db, settings = fresh_db(path, traffic)
    end = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    start = end - timedelta(days=days)
    # Whole slices a day, each about purge_interval_s / scale long.
    per_day = max(1, round(DAY_S / (settings.purge_interval_s / scale)))
    clock = [start]
    write = writer(db, settings, clock)
    carry: Counter[str] = Counter()
    purges: list[PurgeResult] = []
    levels: list[dict[str, Any]] = []
    stored = 0
    started = time.monotonic()
    for day in range(1, days + 1):
        for part in range(per_day):
            t = start + timedelta(days=day - 1, seconds=part * DAY_S / per_day)
            stored += write_slice(write, clock, traffic, carry, t, DAY_S / per_day, scale,
                                  settings.batch_max_events)
            # The agent's purge, every purge_interval_s, and at once again while more is due.
            now = start + timedelta(days=day - 1, seconds=(part + 1) * DAY_S / per_day)
            purges.append(purge_once(db.conn, settings, now))
            while purges[-1].more:
                purges.append(purge_once(db.conn, settings, now))
        if day % report_every == 0 or day in (1, days):
            levels.append(level(db.conn, path, day, scale, len(traffic.catalog)))
            log(f"day {day:3d}: {levels[-1]['file_mb']:8.1f} MB measured,"
                f" {levels[-1]['total_gb']:6.2f} GB extrapolated"
                f" ({time.monotonic() - started:.0f} s)")
    db.conn.close()
    return levels, {"events_stored": stored, "purge_calls": len(purges),
                    "purge_transactions": sum(p.transactions for p in purges),
                    "rows_purged": sum(p.total for p in purges),
                    "longest_purge_transaction_ms": 1000 * max(
                        p.longest_transaction_s for p in purges),
                    "longest_purge_call_ms": 1000 * max(p.seconds for p in purges)}


def write_slice(write: EventWriter, clock: list[datetime], traffic: Traffic,
                carry: Counter[str], t: datetime, span: float, scale: float,
                batch_events: int) -> int:
    """`span` seconds of the store's traffic from `t`, at `scale`, in the writer's batches."""
    stamps: list[tuple[float, str]] = []
    for kind, rate in RATES.items():
        carry[kind] += rate * scale * span
        n = int(carry[kind])
        carry[kind] -= n
        stamps += [(traffic.rng.uniform(0, span), kind) for _ in range(n)]
    stamps.sort()
    stored = 0
    for first in range(0, len(stamps), batch_events):
        batch = stamps[first:first + batch_events]
        clock[0] = t + timedelta(seconds=batch[-1][0]) + WRITER_LATENCY
        stored += write.write_batch(
            [traffic.message(kind, t + timedelta(seconds=s)) for s, kind in batch]
        ).stored_total
    return stored


def level(conn: sqlite3.Connection, path: Path, day: int, scale: float,
          products: int) -> dict[str, Any]:
    """The database's size at the end of `day`, measured and extrapolated to full rates."""
    db_file, wal = file_bytes(path)
    row: dict[str, Any] = {"day": day, "file_mb": (db_file + wal) / 1e6, "wal_mb": wal / 1e6}
    tables = table_bytes(conn)
    days_kept = conn.execute(f"SELECT count(DISTINCT day) FROM {DAILY_TOTALS}").fetchone()[0]
    rows = conn.execute(f"SELECT count(*) FROM {DAILY_TOTALS}").fetchone()[0]
    daily = tables.pop(DAILY_TOTALS, 0)
    groups = {"short_kept_gb": sum(tables.pop(t, 0) for t in SHORT_KEPT) / scale}
    for name, names in LONG_KEPT.items():
        groups[f"{name}_gb"] = sum(tables.pop(t, 0) for t in names) / scale
    groups["daily_totals_gb"] = daily / rows * products * days_kept if rows else 0.0
    groups["free_gb"] = tables.pop("(free pages)") / scale
    groups["features_gb"] = tables.pop(FEATURES, 0)  # as measured: see features_bytes
    groups["fixed_gb"] = sum(tables.values())  # catalog, customers, shelf state
    row.update({k: v / 1e9 for k, v in groups.items()})
    row["total_gb"] = sum(row[k] for k in groups) + wal / 1e9
    return row


def settled(levels: list[dict[str, Any]], key: str, after_day: float) -> float | None:
    """How far `key` moved over the reports after `after_day`, as a share of its level."""
    values = [row[key] for row in levels if row["day"] > after_day]
    if len(values) < 2 or max(values) <= 0:
        return None
    return (max(values) - min(values)) / max(values)


def features_bytes(traffic: Traffic, settings: Settings) -> tuple[int, int]:
    """A shopper's features after the sales of `retention_sales_days` at full rates (their
    state grows with the products they buy; random baskets from the store's popularity
    make it an upper bound, as real shoppers come back for their staples)."""
    sales = round(RATES["pos.transaction"] * (1 - WALK_IN_SHARE) * DAY_S
                  * settings.retention_sales_days / CUSTOMERS)
    category = {p.product_id: p.category for p in traffic.catalog}
    features = ShopperFeatures()
    for n in range(sales):
        basket = {traffic.popularity.draw(traffic.rng).product_id
                  for _ in range(LINES_PER_SALE)}
        features.apply_sale(n * DAY_S / 6, [SaleLine(p, category[p], 1.0) for p in basket],
                            30.0)
    return sales, len(features.to_blob())


def estimate(sizes: dict[str, dict[str, Any]], settings: Settings, traffic: Traffic,
             fixed_bytes: float) -> list[dict[str, Any]]:
    """Steady-state bytes at full rates with `settings`' retention, part by part."""
    parts = []
    for kind, rate in RATES.items():
        log_bytes = sizes[kind]["by_table"].get("events", 0)
        parts.append({"part": f"event log: {kind}", "per_s": rate,
                      "days": settings.retention_events_days, "bytes_each": log_bytes})
    for table, kind, days in [
            ("zone_traffic", "zone.traffic", settings.retention_sensor_days),
            ("presence", "presence", settings.retention_sensor_days),
            ("interactions", "interaction", settings.retention_interactions_days)]:
        parts.append({"part": f"{table} rows", "per_s": RATES[kind], "days": days,
                      "bytes_each": sizes[kind]["by_table"].get(table, 0)})
    sale = sizes["pos.transaction"]
    parts.append({"part": f"sales ({LINES_PER_SALE} lines each)",
                  "per_s": RATES["pos.transaction"], "days": settings.retention_sales_days,
                  "bytes_each": sum(sale["by_table"].get(t, 0) for t in LONG_KEPT["sales"])})
    daily_row = (sale["by_table"].get(DAILY_TOTALS, 0) * sale["events"]
                 / max(1, sale["daily_total_rows"]))
    parts.append({"part": "daily totals (every product, every day)",
                  "per_s": len(traffic.catalog) / DAY_S, "days": settings.retention_sales_days,
                  "bytes_each": daily_row})
    for part in parts:
        part["bytes"] = part["bytes_each"] * part["per_s"] * DAY_S * part["days"]
    dead = sizes["dead letter"]["by_table"].get("dead_letters",
                                                sizes["dead letter"]["file_bytes_per_event"])
    parts.append({"part": f"dead letters at the cap ({settings.dead_letter_max_rows:,},"
                          " oversized junk)", "bytes": dead * settings.dead_letter_max_rows})
    sales_each, blob = features_bytes(traffic, settings)
    parts.append({"part": f"shopper features ({CUSTOMERS:,} shoppers, {sales_each:,} sales"
                          " each)", "bytes": blob * CUSTOMERS})
    parts.append({"part": "catalog, customers, shelf state", "bytes": fixed_bytes})
    parts.append({"part": "WAL (wal_autocheckpoint)",
                  "bytes": WAL_AUTOCHECKPOINT_PAGES * SQLITE_PAGE_BYTES})
    return parts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=60)
    # 1% of the rates: 60 days take ~4 minutes on the 2-core machine (2% would take ~8).
    parser.add_argument("--scale", type=float, default=0.01)
    parser.add_argument("--report-every", type=int, default=5, help="days between rows")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", type=Path, help="also write the figures as JSON here")
    args = parser.parse_args(argv)
    if not 0 < args.scale <= 1 or args.days < 1:
        parser.error("--scale must be in (0, 1] and --days at least 1")
    if not has_dbstat():
        parser.error("needs SQLite's dbstat table (SQLITE_ENABLE_DBSTAT_VTAB), which"
                     " python.org's and Debian's Pythons have")
    settings = load_settings(store_id=STORE)
    # The dead-letter sample would log a warning per message.
    logging.getLogger("edge_agent.storage.event_writer").setLevel(logging.ERROR)
    traffic = Traffic(args.seed)

    def log(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    with tempfile.TemporaryDirectory(prefix="bench-storage-") as tmp:
        workdir = Path(tmp)
        sizes = {kind: measure_type(workdir, traffic, kind, n)
                 for kind, n in [*SAMPLE_EVENTS.items(), ("dead letter", DEAD_LETTER_SAMPLE)]}
        log("bytes per event measured; simulating the store")
        levels, purge = simulate(workdir, traffic, args.days, args.scale, args.report_every,
                                 log)
    parts = estimate(sizes, settings, traffic, levels[-1]["fixed_gb"] * 1e9)
    total = sum(p["bytes"] for p in parts)
    short_after = 2 * max(settings.retention_events_days, settings.retention_sensor_days)
    moved = {key: settled(levels, key, short_after) for key in ("short_kept_gb", "total_gb")}
    levels_off = moved["short_kept_gb"] is not None and moved["short_kept_gb"] < SETTLED_WITHIN
    report(args, sizes, levels, purge, parts, total, moved, short_after, levels_off)
    if args.json:
        args.json.write_text(json.dumps({
            "benchmark": "storage", "days": args.days, "scale": args.scale, "rates": RATES,
            "bytes_per_event": list(sizes.values()), "levels": levels, "purge": purge,
            "estimate": parts, "estimate_bytes": total, "levels_off": levels_off,
            "goal_met": levels_off and total < GOAL_BYTES}, indent=2))
    return 0 if levels_off and total < GOAL_BYTES else 1


def report(args: argparse.Namespace, sizes: dict[str, dict[str, Any]],
           levels: list[dict[str, Any]], purge: dict[str, Any], parts: list[dict[str, Any]],
           total: float, moved: dict[str, float | None], short_after: float,
           levels_off: bool) -> None:
    print("Bytes per stored event (fresh database, N events of one type, after a checkpoint;"
          " exact at any --scale):\n")
    print("| type | events | file growth B/event | event log B | own rows B | own tables"
          " | bounded state B |")
    print("|---|---|---|---|---|---|---|")
    for s in sizes.values():
        by_table = s["by_table"]
        own = {t: b for t, b in by_table.items()
               if t not in ("events", "(free pages)", *BOUNDED)}
        bounded = sum(by_table.get(t, 0) for t in BOUNDED)
        print(f"| {s['type']} | {s['events']:,} | {s['file_bytes_per_event']:,.0f} |"
              f" {by_table.get('events', 0):,.0f} | {sum(own.values()):,.0f} | "
              + (", ".join(f"{t} {b:,.0f}" for t, b in sorted(own.items(), key=lambda x: -x[1]))
                 or "–") + f" | {bounded:,.0f} |")
    print("\n(bounded state: shelf_state, shopper_features, product_daily_sales: a row per"
          " shelf, shopper, or product and day, however many events; a shopper's features do"
          " grow with the products they buy, which the estimate below counts.)")
    rates = ", ".join(f"{k} {v:g}/s" for k, v in RATES.items())
    print(f"\nSimulated store, {args.days} days at {args.scale:g}× of {rates}"
          f" ({LINES_PER_SALE} lines a sale, {CUSTOMERS:,} customers), default retention."
          f" Measured sizes are at {args.scale:g}×; GB columns are extrapolated"
          f" ×1/scale = ×{1 / args.scale:g} (bytes per event are exact), but for shopper"
          " features, catalog and customers, as measured:\n")
    print("| day | file+WAL MB measured | events, sensors, dead letters GB | interactions GB"
          " | sales GB | daily totals GB | free pages GB | features GB | catalog, customers GB"
          " | total GB |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for row in levels:
        print(f"| {row['day']} | {row['file_mb']:,.1f} | "
              + " | ".join(f"{row[k]:.2f}" for k in (
                  "short_kept_gb", "interactions_gb", "sales_gb", "daily_totals_gb",
                  "free_gb", "features_gb", "fixed_gb", "total_gb")) + " |")
    print(f"\nPurge: {purge['purge_calls']:,} calls, {purge['purge_transactions']:,}"
          f" transactions, {purge['rows_purged']:,} rows; longest transaction"
          f" {purge['longest_purge_transaction_ms']:.1f} ms (its commit included, and the WAL"
          " checkpoint a commit may run, which does not hold the write lock), longest call"
          f" {purge['longest_purge_call_ms']:.1f} ms.")
    print("\nSteady state at full rates, default retention, a full year of sales:\n")
    print("| part | per s | kept days | bytes each | GB |")
    print("|---|---|---|---|---|")
    for p in parts:
        each = f"{p['bytes_each']:,.0f}" if "bytes_each" in p else "–"
        per_s = f"{p['per_s']:.3g}" if "per_s" in p else "–"
        days = f"{p['days']:g}" if "days" in p else "–"
        print(f"| {p['part']} | {per_s} | {days} | {each} | {p['bytes'] / 1e9:.2f} |")
    print(f"| **total** | | | | **{total / 1e9:.2f}** |")
    short = moved["short_kept_gb"]
    print(f"\nLevels off: {'yes' if levels_off else 'NO'} — events, sensor rows and dead"
          f" letters moved {100 * short:.1f}% after day {short_after:g}" if short is not None
          else f"\nLevels off: run too short to tell (needs more than {short_after:g} days)")
    if short is not None and levels:
        defaults = Settings.model_construct()
        print(f"(the whole file moved {100 * (moved['total_gb'] or 0):.1f}%: interactions,"
              f" kept {defaults.retention_interactions_days:g} days, and sales, kept"
              f" {defaults.retention_sales_days:g}, grow until their retention; the estimate"
              " counts them in full).")
    print(f"Goal (levels off, and under {GOAL_BYTES / 1e9:.0f} GB with a year of sales):"
          f" {'met' if levels_off and total < GOAL_BYTES else 'NOT met'}"
          f" ({total / 1e9:.2f} GB).")
    print("No figure for the old schema: its bytes per event were not measured.")


if __name__ == "__main__":
    sys.exit(main())
