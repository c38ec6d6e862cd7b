"""Release: how long a staged rollout takes to reach a fleet of simulated stores, beside the
same rollout as one job with no waves; and the retraining scaling figures.

    python benchmarks/release.py [--stores 200] [--minute-s 1.0] [--bundle-kb 1024]
                                 [--repeats 1] [--watch-interval-s 0.5]
                                 [--skip-retrain | --retrain-json PATH] [--json PATH]

1. A `LocalCloud` (TLS Mosquitto for IoT Core, moto for S3 and IoT, the local IoT Jobs
   stand-in) in a temp dir, with a job "minute" of `--minute-s` seconds: the IoT Jobs pacing
   of a wave (10 stores a minute, doubling after every 10 successes, at most 100 a minute)
   runs that much faster than in production. The times are also given in job minutes.
2. `--stores` simulated stores (`cloud_sync.local.simulated_stores`), provisioned into the
   fleet group and connected, each with its own MQTT 5 connection, in this one process.
   They download and check the bundle and report SUCCEEDED with healthy numbers at once
   (no probation: they serve no traffic).
3. A signed bundle of `--bundle-kb` (a tiny ONNX model and incompressible padding: what the
   stores download is the bundle's real size), released with `create_release` and driven by
   the real controller (`ReleaseController.watch`, soak 0) in a thread:
   - **waves**: one canary store, then 10 %, 50 %, 100 % of the others (the defaults);
   - **one job**: `--waves 100`, no canary: every store in one job.
   Timed from the call to `create_release` until every simulated store serves the version
   (read from the stores themselves), and until the controller marks the release complete.
   Passes alternate the two modes over `--repeats`.
4. Retraining scaling: `benchmarks/retrain.py` in a subprocess after the rollouts (about 4
   minutes), or its figures from `--retrain-json` (a file it wrote earlier).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from machine import log, machine

from cloud_sync.local.simulated_stores import SimulatedFleet
from cloud_sync.local.stack import LocalCloud
from cloud_sync.release.commands import LOCAL_ROLE_ARN
from cloud_sync.release.controller import ReleaseController
from cloud_sync.release.create import create_release
from cloud_sync.release.spec import RolloutSpec
from models.bundle import build_bundle, generate_keypair, load_private_key

BUCKET = "bench-releases"
WAVES, ONE_JOB = "waves", "one job"
RUN_TIMEOUT_S = 900.0  # a rollout that takes longer has stalled
RETRAIN = Path(__file__).with_name("retrain.py")


def tiny_models(directory: Path, padding_bytes: int) -> Path:
    """A models directory with one small ONNX model and `padding_bytes` of random data in an
    array file the bundle carries (random: gzip cannot shrink it)."""
    from onnx import TensorProto, helper

    directory.mkdir(parents=True)
    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])], "identity",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 1])])
    (directory / "identity.onnx").write_bytes(helper.make_model(graph).SerializeToString())
    (directory / "padding.npz").write_bytes(os.urandom(padding_bytes))
    return directory


def one_rollout(cloud: LocalCloud, fleet: SimulatedFleet, bundle: Path, public_key: Path,
                spec: RolloutSpec, interval_s: float) -> dict[str, Any]:
    iot, s3 = cloud.boto3_client("iot"), cloud.boto3_client("s3")
    controller = ReleaseController(iot, s3, BUCKET, LOCAL_ROLE_ARN)
    start = time.perf_counter()
    record = create_release(iot=iot, s3=s3, bucket=BUCKET, role_arn=LOCAL_ROLE_ARN,
                            bundle=bundle, public_key=public_key, spec=spec)
    decisions: list[str] = []
    done: dict[str, Any] = {}

    def watch() -> None:
        decision = controller.watch(record.version, interval_s=interval_s,
                                    timeout_s=RUN_TIMEOUT_S,
                                    on_decision=lambda d: decisions.append(d.action))
        done["controller_s"] = time.perf_counter() - start
        done["outcome"] = decision.action

    watcher = threading.Thread(target=watch, name="watch")
    watcher.start()
    served = fleet.wait_serving(record.version, RUN_TIMEOUT_S)
    all_served_s = time.perf_counter() - start
    watcher.join()
    record = controller.record(record.version)
    # When each wave's last store reported SUCCEEDED, from the stores' own clocks.
    started_at = time.time() - (time.perf_counter() - start)
    waves = []
    for wave in record.waves:
        times = [o.at for name in wave["things"] for o in fleet[name].outcomes
                 if o.version == record.version and o.status == "SUCCEEDED"]
        waves.append({"label": wave["label"], "stores": len(wave["things"]),
                      "last_success_s": round(max(times) - started_at, 2) if times else None})
    return {"version": record.version, "served_by_all": served,
            "all_served_s": round(all_served_s, 2),
            "controller_s": round(done.get("controller_s", float("nan")), 2),
            "outcome": done.get("outcome"), "status": record.status, "waves": waves,
            "steps_recorded": len(record.decisions)}


def run_retrain(args: argparse.Namespace) -> dict[str, Any] | None:
    if args.retrain_json:
        return dict(json.loads(Path(args.retrain_json).read_text()))
    if args.skip_retrain or not RETRAIN.exists():
        return None
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "retrain.json"
        log("retraining benchmark (benchmarks/retrain.py, about 4 minutes) ...")
        subprocess.run([sys.executable, str(RETRAIN), "--json", str(out)], check=True,
                       stdout=subprocess.DEVNULL)
        return dict(json.loads(out.read_text()))


def print_report(report: dict[str, Any]) -> None:
    m, f = report["machine"], report["fleet"]
    minute = report["minute_s"]
    print(f"\nmachine: {m['cpus']} cores, {m['cpu']}, load {m['load_avg'][0]:.1f} at start,"
          f" {m['load_avg_end'][0]:.1f} at the end")
    print(f"fleet: {f['stores']} simulated stores in one process: provisioned in"
          f" {f['provision_s']} s, connected in {f['connect_s']} s; {f['threads']} threads,"
          f" max RSS {f['max_rss_mb']} MB; bundle {report['bundle_bytes']:,} bytes;"
          f" job minute = {minute} s")
    print("\n| rollout | waves (stores) | all stores serve s | job minutes | controller"
          " complete s | each wave's last success s |")
    print("|---|---|---|---|---|---|")
    for run in report["runs"]:
        sizes = ", ".join(f"{w['label']} {w['stores']}" for w in run["waves"])
        lasts = " / ".join(str(w["last_success_s"]) for w in run["waves"])
        print(f"| {run['mode']} | {sizes} | {run['all_served_s']} |"
              f" {run['all_served_s'] / minute:.1f} | {run['controller_s']} | {lasts} |")
    print(f"\nstaged / one job (median time until all serve): {report['ratio']:.2f}x")
    retrain = report.get("retrain")
    if retrain is None:
        print("retraining scaling: TODO — not measured in this run (benchmarks/retrain.py"
              " missing or --skip-retrain); see its own section in benchmarks/README.md")
        return
    walls = retrain.get("median_wall_s", {})
    print(f"retraining ({retrain['stores']} stores, benchmarks/retrain.py):"
          f" wall {', '.join(f'{w} worker(s) {s} s' for w, s in walls.items())};"
          f" scaling 1 -> 2 workers {retrain.get('scaling', float('nan')):.2f}x"
          f" (ideal {retrain.get('ideal_scaling', float('nan')):.2f}x)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stores", type=int, default=200)
    parser.add_argument("--minute-s", type=float, default=1.0,
                        help="seconds a job minute lasts in the IoT Jobs stand-in")
    parser.add_argument("--bundle-kb", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--watch-interval-s", type=float, default=0.5)
    retrain = parser.add_mutually_exclusive_group()
    retrain.add_argument("--skip-retrain", action="store_true")
    retrain.add_argument("--retrain-json", type=Path,
                         help="figures written by benchmarks/retrain.py --json")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON here")
    args = parser.parse_args(argv)
    report: dict[str, Any] = {"benchmark": "release", "machine": machine(),
                              "minute_s": args.minute_s, "runs": []}
    with tempfile.TemporaryDirectory(prefix="bench-release-") as tmp, \
            LocalCloud(Path(tmp) / "cloud", jobs_seconds_per_minute=args.minute_s) as cloud:
        root = Path(tmp)
        cloud.boto3_client("s3").create_bucket(
            Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": cloud.region})
        private, public = generate_keypair(root / "keys")
        models = tiny_models(root / "models", args.bundle_kb * 1024)
        names = [f"bench-{n:04d}" for n in range(args.stores)]
        log(f"provisioning {args.stores} simulated stores ...")
        start = time.perf_counter()
        fleet = SimulatedFleet.provision(cloud, names, root / "stores")
        provisioned = time.perf_counter() - start
        start = time.perf_counter()
        fleet.start()
        report["fleet"] = {"stores": args.stores, "provision_s": round(provisioned, 1),
                           "connect_s": round(time.perf_counter() - start, 1)}
        specs = {WAVES: RolloutSpec(canaries=(names[0],), soak_s=0, probation_s=0),
                 ONE_JOB: RolloutSpec(waves=(100,), soak_s=0, probation_s=0)}
        try:
            for repeat in range(args.repeats):
                order = [WAVES, ONE_JOB] if repeat % 2 == 0 else [ONE_JOB, WAVES]
                for mode in order:
                    version = f"bench-{len(report['runs']) + 1}"
                    bundle = build_bundle(models, root / f"{version}.tar.gz",
                                          load_private_key(private), version=version)
                    report["bundle_bytes"] = bundle.stat().st_size
                    log(f"{mode}: releasing {version} ...")
                    run = one_rollout(cloud, fleet, bundle, public, specs[mode],
                                      args.watch_interval_s)
                    report["runs"].append({"mode": mode, **run})
        finally:
            report["fleet"]["threads"] = threading.active_count()
            report["fleet"]["max_rss_mb"] = round(
                resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
            fleet.close()
    medians = {mode: statistics.median(r["all_served_s"] for r in report["runs"]
                                       if r["mode"] == mode) for mode in (WAVES, ONE_JOB)}
    report["median_all_served_s"] = medians
    report["ratio"] = medians[WAVES] / medians[ONE_JOB]
    report["retrain"] = run_retrain(args)
    report["machine"]["load_avg_end"] = os.getloadavg()
    print_report(report)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, default=str) + "\n")
    return 0 if all(r["served_by_all"] and r["status"] == "complete"
                    for r in report["runs"]) else 1


if __name__ == "__main__":
    sys.exit(main())
