"""What a killed or cancelled release download leaves behind is swept when the updater
starts (nothing else writes there)."""

from __future__ import annotations

from pathlib import Path

from edge_agent.updates.download import sweep
from edge_agent.updates.updater import DOWNLOADS_DIR


def test_leftover_downloads_are_swept(tmp_path: Path) -> None:
    downloads = tmp_path / DOWNLOADS_DIR
    assert sweep(downloads) == 0  # no folder yet: nothing to do
    downloads.mkdir()
    (downloads / "job-1.tar.gz.partial").write_bytes(b"x" * 1000)  # cut by kill -9
    (downloads / "job-2.tar.gz").write_bytes(b"y" * 10)  # verified, then the job cancelled
    assert sweep(downloads) == 2
    assert list(downloads.iterdir()) == []
