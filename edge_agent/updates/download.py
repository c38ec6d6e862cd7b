"""Fetch a release's bundle archive from its presigned URL, bounded by what the job says.

The job document names the archive's size and SHA-256: reading stops one byte past the
size, and a digest that differs refuses the file before any of it is unpacked. The file is
written beside its final name and renamed, so a crash never leaves half an archive under a
name the updater trusts.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import urllib.error
import urllib.request
from pathlib import Path

CHUNK_BYTES = 1 << 16
TIMEOUT_S = 30.0


class DownloadError(Exception):
    """The archive could not be fetched, or is not the one the job names."""


def download(url: str, dest: Path, expected_bytes: int, sha256: str,
             timeout_s: float = TIMEOUT_S) -> Path:
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_name(dest.name + ".partial")
    digest, size = hashlib.sha256(), 0
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response, \
                partial.open("wb") as out:
            while chunk := response.read(CHUNK_BYTES):
                size += len(chunk)
                if size > expected_bytes:
                    raise DownloadError(f"the archive is larger than the {expected_bytes}"
                                        " bytes the job names")
                digest.update(chunk)
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
    except (urllib.error.URLError, OSError, ValueError) as exc:
        partial.unlink(missing_ok=True)
        reason = getattr(exc, "reason", None) or type(exc).__name__
        raise DownloadError(f"download failed: {reason}") from None
    except DownloadError:
        partial.unlink(missing_ok=True)
        raise
    if size != expected_bytes or digest.hexdigest() != sha256:
        partial.unlink(missing_ok=True)
        raise DownloadError(f"the archive ({size} bytes) is not the one the job names"
                            f" ({expected_bytes} bytes, sha256 {sha256[:12]}…)")
    os.replace(partial, dest)
    return dest


def discard(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink()


def sweep(folder: Path) -> int:
    """Delete what a previous run left in the downloads folder (a download cut by kill -9,
    an archive whose job was then cancelled and never offered again); returns how many.
    Only the updater writes there, so at its start nothing in it is in use."""
    removed = 0
    if folder.is_dir():
        for leftover in folder.iterdir():
            if leftover.is_file() or leftover.is_symlink():
                discard(leftover)
                removed += 1
    return removed
