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
