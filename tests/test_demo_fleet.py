"""`edge-agent demo` as a user runs it: two stores, their simulators, the local cloud and a
lake worker, in one process started from the command line. Both stores' events reach the
lake, the printed pages answer, and SIGTERM stops everything: exit 0, no traceback, no
Mosquitto or moto left behind."""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from cloud_sync.lake.store import Lake
from cloud_sync.local.stack import LAKE_BUCKET, LocalCloud, LocalCloudError
from edge_agent.broker import find_mosquitto, free_port, port_is_free
from edge_agent.settings import load_settings
from tests.conftest import require_component

STORES = ("store-001", "store-002")


def wait_for(predicate: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def two_free_ports() -> int:
    """A port P with P+1 free too: the demo gives store n the port P+n."""
    for _ in range(50):
        port = free_port()
        if port < 65535 and port_is_free("127.0.0.1", port + 1):
            return port
    raise AssertionError("no two consecutive free ports")


def children(pid: int) -> set[int]:
    """Direct children of `pid` (mosquitto and moto are started in sessions of their own,
    so only their parent links them to the demo)."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.add(int(stat.parent.name))
    return found


def command_of(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


class Output:
    """Collects a pipe's lines in a thread, so the demo never blocks on a full pipe."""

    def __init__(self, stream: object) -> None:
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream: object) -> None:
        for line in stream:  # type: ignore[attr-defined]
            self.lines.append(line.rstrip("\n"))

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    def join(self) -> None:
        self._thread.join(10)


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], Output, int]]:
    require_component("mosquitto", find_mosquitto() is not None, "apt-get install mosquitto")
    port = two_free_ports()
    stderr = (tmp_path / "stderr.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "edge_agent.cli", "demo", "--stores", "2", "--port", str(port),
         "--history-days", "2", "--shoppers", "40", "--rate", "20"],
        cwd=tmp_path, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=stderr,
        text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert process.stdout is not None
    output = Output(process.stdout)
    try:
        yield process, output, port
    finally:
        if process.poll() is None:  # a failed test: take it down and what it started
            helpers = children(process.pid)
            process.terminate()
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(30)
            for pid in helpers:
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGTERM)
        stderr.close()


@pytest.mark.slow
def test_two_stores_reach_the_lake_and_stop_cleanly(
        demo: tuple[subprocess.Popen[str], Output, int], tmp_path: Path) -> None:
    process, output, port = demo
    started = time.monotonic()
    wait_for(lambda: "Ctrl-C to stop" in output.text or process.poll() is not None, 60,
             "the banner")
    assert process.poll() is None, output.text + (tmp_path / "stderr.log").read_text()
    banner_s = time.monotonic() - started
    helpers = children(process.pid)
    assert any("mosquitto" in command_of(p) for p in helpers), helpers
    assert any("moto_process" in command_of(p) for p in helpers), helpers

    # Every store's pages, with their keys, and a loyalty number to try.
    kiosks = re.findall(r"kiosk\s+: (http://\S+)", output.text)
    assert [url.split("/ui/")[0] for url in kiosks] == [
        f"http://127.0.0.1:{port}", f"http://127.0.0.1:{port + 1}"]
    for role in ("display", "staff"):
        assert len(re.findall(rf"{role}\s+: http://\S+\?key=\S+", output.text)) == 2
    assert len(re.findall(r"loyalty no\. : \d+", output.text)) >= 2
    for url in kiosks:
        assert httpx.get(url, timeout=10).status_code == 200, url

    # Both stores' events in the lake, read as the cloud's own tools read it.
    cloud_dir = tmp_path / "demo-data" / "cloud"
    assert f"cloud-sync lake count --local {cloud_dir}" in output.text
    lake = Lake(LocalCloud.attach(cloud_dir).boto3_client("s3"), LAKE_BUCKET)

    def types_in_lake(store: str) -> set[str]:
        return set(lake.read(store_id=store)["type"].to_pylist())

    for store in STORES:  # the back-filled history and live traffic both went up
        wait_for(lambda s=store: {"pos.transaction", "shelf.reading"} <= types_in_lake(s),
                 60, f"{store}'s history and live events in the lake")
    for url in kiosks:  # the link's state is sampled every few seconds
        readyz = url.split("/ui/")[0] + "/readyz"
        wait_for(lambda u=readyz: httpx.get(u, timeout=10).json()["link"]["state"]
                 == "connected", 30, f"{readyz} to say the link is connected")
        assert httpx.get(readyz, timeout=10).status_code == 200
    wait_for(lambda: re.search(r"^lake \d\d:\d\d:\d\d: store-001 \d+ events \(\+\d+\), "
                               r"store-002 \d+ events", output.text, re.MULTILINE),
             30, "a line of lake progress")

    process.send_signal(signal.SIGTERM)
    assert process.wait(60) == 0, output.text
    output.join()
    stderr = (tmp_path / "stderr.log").read_text()
    assert "Traceback" not in output.text + stderr, stderr
    assert all(f"demo {store}: history" in output.text for store in STORES), output.text
    left = {pid: command_of(pid) for pid in helpers if command_of(pid)}
    assert not left, f"left running: {left}"
    with pytest.raises(LocalCloudError):  # its description is gone with it
        LocalCloud.attach(cloud_dir)
    print(f"banner after {banner_s:.1f} s, whole test {time.monotonic() - started:.1f} s")


def test_without_mosquitto_the_demo_says_so_and_runs_the_island(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from edge_agent.demo import runner

    islands: list[object] = []
    monkeypatch.setattr(runner, "find_mosquitto", lambda: None)
    monkeypatch.setattr(runner, "run_island", lambda settings, args: islands.append(args) or 0)
    args = argparse.Namespace(stores=None, no_cloud=False)
    assert runner.run_demo(load_settings(), args) == 0
    assert islands == [args]
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and "mosquitto is not installed" in out[0] and "island" in out[0]


@pytest.mark.parametrize(("first", "ids"), [
    ("store-001", ["store-001", "store-002", "store-003"]),
    ("shop9", ["shop9", "shop10", "shop11"]),
    ("demo-t", ["demo-t", "demo-t-2", "demo-t-3"]),
])
def test_store_ids_follow_the_first(first: str, ids: list[str]) -> None:
    from edge_agent.demo.fleet import store_ids

    assert store_ids(first, 3) == ids


def test_no_cloud_is_the_one_store_island(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    from edge_agent.demo import runner

    require_component("mosquitto", find_mosquitto() is not None, "apt-get install mosquitto")
    parser = argparse.ArgumentParser()
    runner.add_arguments(parser)
    args = parser.parse_args(["--no-cloud", "--duration", "0.5", "--history-days", "1",
                              "--shoppers", "20", "--rate", "100"])
    settings = load_settings(store_id="island-1", db=tmp_path / "edge.db", port=free_port())
    assert runner.run_demo(settings, args) == 0
    out = capsys.readouterr().out
    assert "edge-agent demo — store island-1" in out and "kiosk" in out
    assert "IoT Core" not in out and "lake" not in out
    assert not (tmp_path / "cloud").exists() and not (tmp_path / "fleet").exists()
