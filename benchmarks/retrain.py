"""Retraining: the `cloud-sync retrain` pass over N stores' lake partitions, on Dask with 1
and 2 worker processes.

    python benchmarks/retrain.py [--stores 4] [--active 300] [--lapsed 100]
                                 [--workers 1 2] [--repeats 1] [--json PATH]

1. A `LocalCloud` (moto S3 behind real HTTP, as `cloud-sync local up`) in a temp dir; each
   store's generated history (`cloud_sync/retrain/synthetic.py`: `--active` shoppers who
   come back until the end, `--lapsed` who stopped before the held-out weeks, a quarter of
   sales anonymous, visits every 2 to 10 days, up to ~8 months; the catalog's categories)
   written through
   `Lake.write_batch` in the uplink's 2,500-event batches: one Parquet object per store and
   day, as the lake workers write them.
2. A first release (2 workers, untimed) makes the champion, so every timed pass does the
   whole job: read, train (chain and every store), score candidate and champion on the
   held-out shoppers, gate, sign.
3. The timed passes: `cloud_sync.retrain.run.retrain` with the champion on a fresh
   `LocalCluster` of each `--workers` count (cluster start included), the wall time from
   call to return, and each scope's own time in its worker.

The scaling ratio is wall(1 worker) / wall(2 workers) (medians over `--repeats`, passes in
alternating order); the chain's task is one task, so the ideal on two workers is
min(2, sum of task times / chain task). Each task's time is split into reading the lake,
training and scoring (candidate and champion): the S3 stand-in is one moto process on the
same cores, so reads from two workers queue behind each other there.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

# Tree fits and numpy: one thread per worker process, the machine has two cores.
os.environ.setdefault("OMP_NUM_THREADS", "1")

from machine import machine

from cloud_sync.lake.store import Lake
from cloud_sync.local.stack import LAKE_BUCKET, LocalCloud
from cloud_sync.retrain import synthetic
from cloud_sync.retrain.config import CHAIN_SCOPE, LakeLocation
from cloud_sync.retrain.run import RetrainRequest, retrain
from models.bundle import generate_keypair

END = datetime(2026, 12, 1, tzinfo=UTC)
# The stores here are small (hundreds of shoppers): thresholds scaled to them, so every
# store trains its own candidate and is gated (the defaults would skip them all).
THRESHOLDS = {"min_store_shoppers": 100, "min_heldout_shoppers": 100}


def write_lake(cloud: LocalCloud, stores: list[str], active: int, lapsed: int
               ) -> dict[str, Any]:
    lake = Lake(cloud.boto3_client("s3"), LAKE_BUCKET)
    start = time.perf_counter()
    events = sum(synthetic.write_store(lake, store, END, active=active, lapsed=lapsed,
                                       seed=n) for n, store in enumerate(stores))
    partitions = len(lake.partitions())
    return {"events": events, "partitions": partitions,
            "seconds": round(time.perf_counter() - start, 1)}


def one_pass(request: RetrainRequest) -> dict[str, Any]:
    start = time.perf_counter()
    outcome = retrain(request)
    wall = time.perf_counter() - start
    scopes = outcome.report["scopes"]
    return {"workers": request.workers, "wall_s": round(wall, 1),
            "exit_code": outcome.exit_code, "reason": outcome.reason,
            "chain_s": scopes[CHAIN_SCOPE]["seconds"],
            "stores_s": round(sum(s["seconds"] for k, s in scopes.items()
                                  if k != CHAIN_SCOPE), 1),
            "worker_processes": len({s["worker_pid"] for s in scopes.values()}),
            **{f"{phase}_s": round(sum(s["data"].get("phases_s", {}).get(phase, 0.0)
                                       for s in scopes.values()), 1)
               for phase in ("read", "train", "score")},
            "scopes": {k: {"seconds": s["seconds"], "status": s["status"],
                           "verdict": (s["gate"] or {}).get("verdict"),
                           "heldout_shoppers": s["data"].get("heldout_shoppers")}
                       for k, s in scopes.items()},
            "champion": outcome.report["champion"]}


def print_report(report: dict[str, Any]) -> None:
    m, lake = report["machine"], report["lake"]
    print(f"\nmachine: {m['cpus']} cores, {m['cpu']}, load {m['load_avg'][0]:.1f} at start")
    print(f"lake: {report['stores']} stores x ({report['active']} active + {report['lapsed']}"
          f" lapsed shoppers), {lake['events']:,} events in {lake['partitions']:,} partitions"
          f" (written in {lake['seconds']} s)")
    print("\n| workers | wall s | chain task s | store tasks s (sum) | read / train / score s"
          " (sum of tasks) | worker processes | chain verdict |")
    print("|---|---|---|---|---|---|---|")
    for p in report["passes"]:
        verdict = "pass" if p["exit_code"] == 0 else "refused"
        print(f"| {p['workers']} | {p['wall_s']} | {p['chain_s']} | {p['stores_s']} |"
              f" {p['read_s']} / {p['train_s']} / {p['score_s']} |"
              f" {p['worker_processes']} | {verdict} |")
    first = report["passes"][0]
    print("\nper scope (first pass):", ", ".join(
        f"{k} {v['seconds']} s ({v['status']}, {v['heldout_shoppers']} held out)"
        for k, v in first["scopes"].items()))
    if "scaling" in report:
        print(f"scaling 1 -> 2 workers (median wall times): {report['scaling']:.2f}x"
              f" (ideal with one chain task: {report['ideal_scaling']:.2f}x);"
              f" load {m['load_avg_end'][0]:.1f} at the end")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stores", type=int, default=4)
    parser.add_argument("--active", type=int, default=300, help="returning shoppers a store")
    parser.add_argument("--lapsed", type=int, default=100, help="lapsed shoppers a store")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=1,
                        help="passes per worker count, in alternating order (median)")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON here")
    args = parser.parse_args(argv)
    report: dict[str, Any] = {"benchmark": "retrain", "machine": machine(),
                              "stores": args.stores, "active": args.active,
                              "lapsed": args.lapsed, "passes": []}
    stores = [f"bench-{n:03d}" for n in range(args.stores)]
    with tempfile.TemporaryDirectory() as tmp, LocalCloud(Path(tmp) / "cloud") as cloud:
        report["lake"] = write_lake(cloud, stores, args.active, args.lapsed)
        private, _public = generate_keypair(Path(tmp) / "keys")
        catalog = Path(tmp) / "catalog.csv"  # the master data's columns that matter here
        catalog.write_text("product_id,category\n" + "".join(
            f"{p},{c}\n" for p, c in synthetic.catalog().items()))
        location = LakeLocation(bucket=LAKE_BUCKET, local_dir=cloud.directory)

        def request(workers: int, out: str, champion: str | None = None) -> RetrainRequest:
            return RetrainRequest(location=location, key=private, out=Path(tmp) / out,
                                  stores=tuple(stores), workers=workers, champion=champion,
                                  catalog=str(catalog), overrides=THRESHOLDS)

        print("first release (the champion, untimed) ...", file=sys.stderr, flush=True)
        first = retrain(request(2, "first"))
        champion = str(first.bundles[CHAIN_SCOPE])
        for repeat in range(args.repeats):
            # Alternate the order: the machine's other load drifts during a run.
            order = args.workers if repeat % 2 == 0 else args.workers[::-1]
            for workers in order:
                print(f"pass on {workers} worker(s) ...", file=sys.stderr, flush=True)
                report["passes"].append(one_pass(request(workers, f"w{workers}-{repeat}",
                                                         champion)))
    walls = {w: statistics.median(p["wall_s"] for p in report["passes"] if p["workers"] == w)
             for w in args.workers}
    report["median_wall_s"] = walls
    if 1 in walls and 2 in walls:
        one = [p for p in report["passes"] if p["workers"] == 1]
        report["scaling"] = walls[1] / walls[2]
        report["ideal_scaling"] = statistics.median(
            min(2.0, (p["chain_s"] + p["stores_s"]) / p["chain_s"]) for p in one)
    report["machine"]["load_avg_end"] = os.getloadavg()
    print_report(report)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
