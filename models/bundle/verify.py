"""Verify a bundle (directory or ``.tar.gz``) before anything in it is loaded.

Order matters: the signature is checked over the manifest's raw bytes before the manifest
is parsed; then every listed file is read once and hashed, and those very bytes are what
the caller gets (no window between checking a file and loading it). Anything the manifest
does not list, any link, and any path leaving the bundle directory is refused.
"""

from __future__ import annotations

import logging
import os
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import onnxruntime as ort

from models.bundle import signing
from models.bundle.errors import (
    BundleError,
    DigestMismatchError,
    ManifestError,
    MissingFileError,
    SignatureError,
    UnlistedFileError,
    UnsafePathError,
)
from models.bundle.keys import FleetPublicKey, load_public_key
from models.bundle.manifest import (
    MANIFEST_FILE,
    SIGNATURE_FILE,
    check_relative_path,
    parse_manifest,
    sha256_hex,
)
from models.runtime import inference_session

logger = logging.getLogger(__name__)

# Archives larger than this are refused before extraction (a gzip bomb would otherwise
# fill the store's disk); today's bundles are a few MB.
MAX_ARCHIVE_UNPACKED_BYTES = 1 << 30
MAX_ARCHIVE_MEMBERS = 1000


@dataclass(frozen=True)
class VerifiedBundle:
    """A bundle whose signature and digests checked out, with the verified file bytes."""

    root: Path
    manifest: dict[str, Any]
    files: dict[str, bytes] = field(repr=False)

    @property
    def name(self) -> str:
        return str(self.manifest["name"])

    @property
    def version(self) -> str:
        return str(self.manifest["version"])

    def read(self, name: str) -> bytes:
        try:
            return self.files[name]
        except KeyError:
            raise MissingFileError(f"bundle {self.version} has no file {name!r}") from None

    def onnx_session(self, name: str) -> ort.InferenceSession:
        """An ONNX Runtime session built from the verified bytes of ``name``."""
        return inference_session(self.read(name))


def verify_bundle(
    path: Path, public_key: FleetPublicKey | Path, extract_to: Path | None = None
) -> VerifiedBundle:
    """Verify ``path`` (a directory or ``.tar.gz``) against ``public_key``.

    An archive is unpacked into ``extract_to`` (a fresh temporary directory when None;
    the caller owns it) and verified there. Raises a :class:`BundleError` subclass
    naming the problem.
    """
    key = public_key if isinstance(public_key, FleetPublicKey) else load_public_key(public_key)
    path = Path(path)
    if path.is_file() and path.name.endswith((".tar.gz", ".tgz")):
        root = Path(extract_to) if extract_to else Path(tempfile.mkdtemp(prefix="bundle-"))
        extract_archive(path, root)
    elif path.is_dir():
        root = path
    else:
        raise BundleError(f"{path} is neither a bundle directory nor a .tar.gz archive")
    return verify_directory(root, key)


def verify_directory(root: Path, key: FleetPublicKey) -> VerifiedBundle:
    manifest_bytes = _read_regular(root, MANIFEST_FILE, ManifestError)
    signature = _read_regular(root, SIGNATURE_FILE, SignatureError)
    signing.verify(manifest_bytes, signature, key)
    manifest = parse_manifest(manifest_bytes)
    files: dict[str, bytes] = {}
    for name, digest in manifest["files"].items():
        data = _read_regular(root, name, MissingFileError)
        if sha256_hex(data) != digest:
            raise DigestMismatchError(f"{name}: SHA-256 differs from the manifest (file changed)")
        files[name] = data
    _refuse_unlisted(root, set(files) | {MANIFEST_FILE, SIGNATURE_FILE})
    logger.info("verified bundle %s %s (%d files)", manifest["name"], manifest["version"],
                len(files))
    return VerifiedBundle(root=root, manifest=manifest, files=files)


def _read_regular(root: Path, name: str, missing: type[BundleError]) -> bytes:
    path = root
    # No link anywhere on the way: a symlink could point outside the bundle.
    for part in check_relative_path(name).parts:
        path = path / part
        if path.is_symlink():
            raise UnsafePathError(f"{name}: {path.relative_to(root)} is a symbolic link")
    if not path.is_file():
        raise missing(f"{name} is missing from the bundle")
    return path.read_bytes()


def _refuse_unlisted(root: Path, listed: set[str]) -> None:
    for dirpath, dirnames, filenames in os.walk(root):
        for entry in dirnames + filenames:
            full = Path(dirpath) / entry
            rel = full.relative_to(root).as_posix()
            if full.is_symlink():
                raise UnsafePathError(f"{rel} is a symbolic link")
            if entry in filenames and rel not in listed:
                raise UnlistedFileError(f"{rel} is in the bundle but not in the manifest")


def extract_archive(archive: Path, dest: Path) -> None:
    """Unpack a bundle archive after checking every member; refuses links and escapes."""
    dest.mkdir(parents=True, exist_ok=True)
    if any(dest.iterdir()):
        raise BundleError(f"extraction directory {dest} is not empty")
    try:
        with tarfile.open(archive, "r:gz") as tar:
            members = tar.getmembers()
            _check_members(members)
            tar.extractall(dest, members=members, filter="data")
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise BundleError(f"cannot read bundle archive {archive}: {exc}") from exc


def _check_members(members: list[tarfile.TarInfo]) -> None:
    if len(members) > MAX_ARCHIVE_MEMBERS:
        raise BundleError(f"archive has {len(members)} members (limit {MAX_ARCHIVE_MEMBERS})")
    total = 0
    for m in members:
        name = m.name.removeprefix("./")
        if not (m.isfile() or m.isdir()):
            raise UnsafePathError(f"archive member {m.name!r} is a link or device")
        if name and name != ".":
            check_relative_path(name.rstrip("/"))
        total += m.size
    if total > MAX_ARCHIVE_UNPACKED_BYTES:
        raise BundleError(f"archive unpacks to {total} bytes (limit {MAX_ARCHIVE_UNPACKED_BYTES})")
