"""The uplink benchmark at a tiny size: it runs end to end (backlog, local cloud, lake worker,
the three runs) and its JSON has the figures the issue asks for, with nothing lost or doubled
in the lake."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from cloud_sync.local.broker import find_mosquitto

ROOT = Path(__file__).resolve().parents[1]
EVENTS = 3000

pytestmark = pytest.mark.slow


@pytest.mark.skipif(find_mosquitto() is None, reason="mosquitto is not installed")
def test_uplink_benchmark_runs_and_loses_nothing(tmp_path: Path) -> None:
    out = tmp_path / "uplink.json"
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "uplink.py"), "--events", str(EVENTS),
         "--limited-events", str(EVENTS), "--json", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "| our uplink (Outbox + BatchPublisher) |" in done.stdout

    report = json.loads(out.read_text())
    assert report["backlog"]["events"] == EVENTS
    assert set(report["backlog"]["mix"]) == {"shelf.reading", "zone.traffic", "presence",
                                             "interaction", "pos.transaction"}
    bare, ours, bare_limited, limited = report["runs"]
    for run in (bare, ours, bare_limited, limited):
        assert run["events"] == EVENTS
        for name in ("events_per_s", "batches", "events_per_batch", "payload_bytes_per_event",
                     "seconds", "lake_done_s"):
            assert run[name] > 0, (run["name"], name)
    assert bare["payload_bytes"] == ours["payload_bytes"]  # the same batches, byte for byte
    assert report["ratio"] == pytest.approx(ours["events_per_s"] / bare["events_per_s"])
    assert report["limited_ratio"] == pytest.approx(
        limited["events_per_s"] / bare_limited["events_per_s"])

    lake = report["lake"]
    assert lake["lost"] == 0
    assert lake["duplicated"] == 0
    assert lake["unexpected"] == 0
    assert lake["distinct_event_ids"] == EVENTS
    assert report["lake_dead_letters"] == 0

    day = report["day"]
    assert day["bound_day_s"] == max(day["bound_by_bytes_s"], day["bound_by_publishes_s"])
    assert day["projected_day_s_at_measured_rate"] > 0
    assert report["machine"]["cpus"] >= 1
    assert set(report["cut_profile"]["share"]) >= {"zlib (level 6)",
                                                   "privacy (allow-list, HMAC)"}
