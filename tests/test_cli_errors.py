"""What an operator sees when the command line cannot work: one line naming the setting,
never a traceback."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge_agent.broker import free_port


@pytest.fixture
def busy_port() -> Iterator[int]:
    port = free_port()
    with socket.create_server(("127.0.0.1", port)):
        yield port


@pytest.mark.parametrize("command", [
    ["run", "--broker", "mqtt://127.0.0.1:1"],
    ["run", "--broker", "mqtt://127.0.0.1:1", "--workers", "2"],
    ["demo"],
])
def test_a_port_in_use_is_one_line_naming_the_setting(busy_port: int, tmp_path: Path,
                                                      command: list[str]) -> None:
    done = subprocess.run([sys.executable, "-m", "edge_agent.cli", *command, "--port",
                           str(busy_port), "--db", str(tmp_path / "edge.db")],
                          capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert done.returncode == 2
    assert "Traceback" not in done.stdout + done.stderr
    last_lines = [text.strip().splitlines()[-1] for text in (done.stdout, done.stderr)
                  if text.strip()]
    assert any("port (EDGE_PORT)" in line and ("in use" in line or "cannot listen" in line)
               for line in last_lines), last_lines


def _without(modules: tuple[str, ...], call: str) -> subprocess.CompletedProcess[str]:
    """Run `call` in a Python where `modules` are not installed (as on a store's gateway
    without the extras)."""
    hide = "; ".join(f"sys.modules[{m!r}] = None" for m in modules)
    return subprocess.run([sys.executable, "-c", f"import sys; {hide}; {call}"],
                          capture_output=True, text=True, timeout=120)


def test_a_command_needing_an_extra_says_which_to_install(tmp_path: Path) -> None:
    from edge_agent.storage import open_database
    from models.bundle import generate_keypair

    open_database(tmp_path / "edge.db").close()
    generate_keypair(tmp_path / "keys")
    train = _without(("sklearn", "skl2onnx"), (
        "from edge_agent.cli import main; sys.exit(main(['train', '--db',"
        f" {str(tmp_path / 'edge.db')!r}, '--store-id', 's', '--key',"
        f" {str(tmp_path / 'keys' / 'bundle_signing_key.pem')!r}, '--out',"
        f" {str(tmp_path / 'out')!r}]))"))
    assert train.returncode == 2 and "Traceback" not in train.stderr
    assert "pip install 'instore-personalization[train]'" in train.stderr.splitlines()[-1]
    cloud = _without(("boto3", "botocore"), (
        "sys.argv = ['cloud-sync', 'release', 'status']; from cloud_sync.entry import main;"
        " sys.exit(main())"))
    assert cloud.returncode == 2 and "Traceback" not in cloud.stderr
    assert cloud.stderr.strip().endswith("pip install 'instore-personalization[cloud]'")


def test_what_a_store_runs_needs_none_of_the_extras() -> None:
    extras = ("sklearn", "skl2onnx", "onnx", "pandas", "pyarrow", "boto3", "botocore", "dask",
              "moto", "amqtt")
    run = _without(extras, (
        "import edge_agent.api.app, edge_agent.agent, edge_agent.api.worker,"
        " edge_agent.ingestion.writer_process, edge_agent.uplink.service,"
        " edge_agent.updates.updater; from edge_agent.cli import main;"
        " sys.exit(main(['run', '--help']))"))
    assert run.returncode == 0, run.stderr
