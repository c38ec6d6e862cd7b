"""The store's bundle folder: the verified bundles it holds and the version it serves.

    <bundle folder>/
        serving.json          which version is served, the one before, versions rolled back
        installed/<version>/  verified bundles, written only by `install`
        <anything else>       where an operator (or the cloud's updater) drops a bundle

`serving.json` is the one record of what this store serves: every HTTP worker follows it,
and a restart serves what was served before it (a rollback stays rolled back). It is
replaced atomically and fsynced, so a crash leaves either the old record or the new one.
Bundles are only ever read from inside this folder, and a refusal never says whether a path
outside it exists.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

from models.bundle import BundleError, VerifiedBundle, verify_bundle
from models.bundle.verify import ARCHIVE_SUFFIXES, TrustedKeys
from models.bundle.version import version_key

logger = logging.getLogger(__name__)

SERVING_FILE = "serving.json"
INSTALLED_DIR = "installed"
# A version names a directory: no separators, no dot files, nothing a shell would expand.
_SAFE_VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$")
# Versions rolled back from, remembered so the watcher never offers them again.
MAX_REMEMBERED_ROLLBACKS = 50


class OutsideBundleFolder(BundleError):
    """A path that is not inside the configured bundle folder (its existence is not told)."""


@dataclass(frozen=True)
class ServingRecord:
    version: str
    previous: str | None = None
    rolled_back: tuple[str, ...] = field(default=())

    def to_json(self) -> str:
        return json.dumps({**asdict(self), "rolled_back": list(self.rolled_back)}) + "\n"


class BundleLibrary:
    def __init__(self, directory: Path, public_key: TrustedKeys, budget_bytes: int) -> None:
        self.directory = Path(directory).resolve()
        self.installed_dir = self.directory / INSTALLED_DIR
        self._public_key = public_key
        self._budget_bytes = budget_bytes
        self.installed_dir.mkdir(parents=True, exist_ok=True)

    # -- where bundles come from ----------------------------------------------------------
    def inside(self, path: Path | str) -> Path:
        """`path` (absolute, or relative to the folder) if it lies inside the folder."""
        candidate = Path(path)
        if not candidate.is_absolute():
            candidate = self.directory / candidate
        resolved = candidate.resolve()  # links followed: one pointing out is refused too
        if resolved == self.directory or self.directory not in resolved.parents:
            raise OutsideBundleFolder("bundles are loaded only from the store's bundle folder")
        return resolved

    def drops(self) -> list[Path]:
        """Bundles dropped into the folder (directories with a manifest, archives)."""
        found = []
        for entry in self.directory.iterdir():
            if entry.name.startswith(".") or entry.name in (INSTALLED_DIR, SERVING_FILE):
                continue
            if entry.name.endswith(ARCHIVE_SUFFIXES) or (entry / "manifest.json").is_file():
                found.append(entry)
        return sorted(found, key=lambda p: p.name)

    # -- installed bundles ------------------------------------------------------------------
    def install(self, source: Path) -> VerifiedBundle:
        """Verify `source` and keep it as installed/<version>; returns the verified bundle.
        Installing a version already held returns the held one (it must be the same
        bundle: a different one under the same version is refused). Callers passing a path
        from outside (the admin API) check it with `inside` first."""
        bundle = verify_bundle(source, self._public_key)
        if not _SAFE_VERSION.match(bundle.version):
            raise BundleError(f"bundle version {bundle.version!r} is not a plain version name")
        target = self.installed_dir / bundle.version
        if target.exists():
            held = self.open(bundle.version)
            if held.manifest_bytes != bundle.manifest_bytes:
                raise BundleError(f"another bundle {bundle.version} is already installed")
            return held
        staging = self.installed_dir / f".{bundle.version}.{os.getpid()}.partial"
        shutil.rmtree(staging, ignore_errors=True)
        bundle.write_to(staging)
        try:
            os.rename(staging, target)  # whole or absent; a concurrent installer may win
        except OSError:
            shutil.rmtree(staging, ignore_errors=True)
            if not target.exists():
                raise
        _fsync_dir(self.installed_dir)
        logger.info("installed bundle %s", bundle.version)
        return bundle

    def open(self, version: str) -> VerifiedBundle:
        """An installed bundle, verified again (a file changed on disk is caught here)."""
        if not _SAFE_VERSION.match(version) or not (self.installed_dir / version).is_dir():
            raise BundleError(f"version {version} is not installed")
        return verify_bundle(self.installed_dir / version, self._public_key)

    def versions(self) -> list[str]:
        """Installed versions, oldest first."""
        held = [p.name for p in self.installed_dir.iterdir()
                if p.is_dir() and not p.name.startswith(".")]
        return sorted(held, key=version_key)

    def prune(self, keep: set[str]) -> list[str]:
        """Remove the oldest installed versions not in `keep` until the folder is within
        its budget; also clears half-written installs left by a crash."""
        for partial in self.installed_dir.glob(".*.partial"):
            shutil.rmtree(partial, ignore_errors=True)
        sizes = {v: _tree_bytes(self.installed_dir / v) for v in self.versions()}
        total, removed = sum(sizes.values()), []
        for version in sizes:  # oldest first
            if total <= self._budget_bytes:
                break
            if version in keep:
                continue
            shutil.rmtree(self.installed_dir / version, ignore_errors=True)
            total -= sizes[version]
            removed.append(version)
        if removed:
            logger.info("pruned bundles %s (budget %d bytes)", ", ".join(removed),
                        self._budget_bytes)
        return removed

    # -- what is served -------------------------------------------------------------------
    def serving(self) -> ServingRecord | None:
        try:
            doc = json.loads((self.directory / SERVING_FILE).read_text())
            return ServingRecord(str(doc["version"]), doc.get("previous"),
                                 tuple(doc.get("rolled_back", ())))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            logger.error("ignoring unreadable %s: %s", SERVING_FILE, exc)
            return None

    def record(self, record: ServingRecord) -> None:
        record = ServingRecord(record.version, record.previous,
                               record.rolled_back[-MAX_REMEMBERED_ROLLBACKS:])
        path = self.directory / SERVING_FILE
        temporary = path.with_name(f".{SERVING_FILE}.{os.getpid()}.tmp")
        with temporary.open("w") as out:
            out.write(record.to_json())
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
        _fsync_dir(self.directory)


def _tree_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def _fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
