"""Verify a bundle (directory or ``.tar.gz``) before anything in it is used or written.

Order matters, and no work is done for an unsigned bundle:
1. the manifest and its signature are read under small caps (an archive must start with
   them), and the signature is checked over the manifest's raw bytes before it is parsed;
2. every file the signed manifest lists is then read once, refused as soon as its size
   differs from the listed one (so at most what the manifest allows is ever read), and
   hashed; those very bytes are what the caller gets (no window between check and load).
Anything the manifest does not list, any link or device, and any path leaving the bundle is
refused. Nothing is extracted to disk: a verified bundle lives in memory until the caller
installs it. Refusal messages name files inside the bundle, never the machine's paths.
"""

from __future__ import annotations

import logging
import os
import stat
import tarfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

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
    MAX_MANIFEST_BYTES,
    MAX_SIGNATURE_BYTES,
    SIGNATURE_FILE,
    ListedFile,
    check_relative_path,
    parse_manifest,
    sha256_hex,
)

if TYPE_CHECKING:
    import onnxruntime as ort

logger = logging.getLogger(__name__)

ARCHIVE_SUFFIXES = (".tar.gz", ".tgz")


@dataclass(frozen=True)
class VerifiedBundle:
    """A bundle whose signature and files checked out, with the verified bytes."""

    manifest: dict[str, Any]
    manifest_bytes: bytes = field(repr=False)
    signature: bytes = field(repr=False)
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
        from models.runtime import inference_session  # ONNX Runtime loads when a model does

        return inference_session(self.read(name))

    def write_to(self, directory: Path) -> None:
        """Write the bundle as a directory (the manifest and signature byte for byte)."""
        directory.mkdir(parents=True)
        for name, data in {**self.files, MANIFEST_FILE: self.manifest_bytes,
                           SIGNATURE_FILE: self.signature}.items():
            target = directory / check_relative_path(name)
            target.parent.mkdir(parents=True, exist_ok=True)
            with target.open("wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())


TrustedKeys = FleetPublicKey | Path | Sequence[FleetPublicKey | Path]


def verify_bundle(path: Path, public_key: TrustedKeys) -> VerifiedBundle:
    """Verify ``path`` (a directory or ``.tar.gz``) against ``public_key``, or against any
    of several trusted keys (a store trusts the fleet's key and, optionally, its own).

    Raises a :class:`BundleError` subclass naming the problem.
    """
    key = trusted_keys(public_key)
    path = Path(path)
    if path.name.endswith(ARCHIVE_SUFFIXES) and path.is_file() and not path.is_symlink():
        bundle = _verify_archive(path, key)
    elif path.is_dir() and not path.is_symlink():
        bundle = _verify_directory(path, key)
    else:
        raise BundleError("not a bundle directory or .tar.gz archive")
    logger.info("verified bundle %s %s (%d files)", bundle.name, bundle.version,
                len(bundle.files))
    return bundle


def trusted_keys(keys: TrustedKeys) -> list[FleetPublicKey]:
    """The keys a bundle may be signed with, loaded."""
    listed = [keys] if isinstance(keys, FleetPublicKey | Path | str) else list(keys)
    if not listed:
        raise SignatureError("no trusted public key to verify against")
    return [k if isinstance(k, FleetPublicKey) else load_public_key(Path(k)) for k in listed]


def _signed_manifest(manifest_bytes: bytes, signature: bytes,
                     keys: list[FleetPublicKey]) -> dict[str, Any]:
    for key in keys[:-1]:
        try:
            signing.verify(manifest_bytes, signature, key)
            break
        except SignatureError:
            continue  # the next trusted key may have signed it
    else:
        signing.verify(manifest_bytes, signature, keys[-1])
    return parse_manifest(manifest_bytes)


def _checked(name: str, data: bytes, listed: ListedFile) -> bytes:
    if len(data) != listed.bytes or sha256_hex(data) != listed.sha256:
        raise DigestMismatchError(f"{name}: content differs from the manifest (file changed)")
    return data


# ------------------------------------------------------------------------------ directory
def _verify_directory(root: Path, key: list[FleetPublicKey]) -> VerifiedBundle:
    manifest_bytes = _read_regular(root, MANIFEST_FILE, ManifestError, MAX_MANIFEST_BYTES)
    signature = _read_regular(root, SIGNATURE_FILE, SignatureError, MAX_SIGNATURE_BYTES)
    manifest = _signed_manifest(manifest_bytes, signature, key)
    listed: dict[str, ListedFile] = manifest["files"]
    files = {name: _checked(name, _read_regular(root, name, MissingFileError, entry.bytes,
                                                too_large=DigestMismatchError), entry)
             for name, entry in listed.items()}
    _refuse_unlisted(root, set(files) | {MANIFEST_FILE, SIGNATURE_FILE})
    return VerifiedBundle(manifest, manifest_bytes, signature, files)


def _read_regular(root: Path, name: str, missing: type[BundleError], limit: int,
                  too_large: type[BundleError] = BundleError) -> bytes:
    """The bytes of ``name`` under ``root``: a regular file, no link on the way, refused
    unread when larger than ``limit``."""
    path = root
    for part in check_relative_path(name).parts:
        path = path / part
        if path.is_symlink():  # a link could point outside the bundle
            raise UnsafePathError(f"{name}: {path.relative_to(root)} is a symbolic link")
    try:
        info = path.stat()
    except OSError:
        raise missing(f"{name} is missing from the bundle") from None
    if not stat.S_ISREG(info.st_mode):
        raise missing(f"{name} is not a regular file")
    if info.st_size > limit:
        raise too_large(f"{name} holds {info.st_size} bytes (allowed {limit})")
    with path.open("rb") as fh:
        return fh.read(limit + 1)


def _refuse_unlisted(root: Path, listed: set[str]) -> None:
    for dirpath, dirnames, filenames in os.walk(root):
        for entry in dirnames + filenames:
            full = Path(dirpath) / entry
            rel = full.relative_to(root).as_posix()
            if full.is_symlink():
                raise UnsafePathError(f"{rel} is a symbolic link")
            if entry in filenames and rel not in listed:
                raise UnlistedFileError(f"{rel} is in the bundle but not in the manifest")


# -------------------------------------------------------------------------------- archive
def _verify_archive(archive: Path, key: list[FleetPublicKey]) -> VerifiedBundle:
    """Stream the archive once: manifest, signature, then each listed file in turn."""
    try:
        with tarfile.open(archive, "r|gz") as tar:
            return _verify_stream(tar, key)
    except (tarfile.TarError, EOFError, OSError, ValueError) as exc:
        raise BundleError(f"the archive cannot be read ({type(exc).__name__})") from None


def _verify_stream(tar: tarfile.TarFile, key: list[FleetPublicKey]) -> VerifiedBundle:
    members = iter(tar)
    manifest_bytes = _next_member(tar, members, MANIFEST_FILE, MAX_MANIFEST_BYTES)
    signature = _next_member(tar, members, SIGNATURE_FILE, MAX_SIGNATURE_BYTES)
    manifest = _signed_manifest(manifest_bytes, signature, key)
    listed: dict[str, ListedFile] = manifest["files"]
    files: dict[str, bytes] = {}
    for member in members:
        name = _member_name(member)
        if member.isdir():
            continue
        if name not in listed:
            raise UnlistedFileError(f"{name} is in the bundle but not in the manifest")
        if name in files:
            raise BundleError(f"{name} appears twice in the archive")
        if member.size != listed[name].bytes:  # refused before a byte of it is read
            raise DigestMismatchError(f"{name}: size differs from the manifest (file changed)")
        files[name] = _checked(name, _read_member(tar, member, listed[name].bytes), listed[name])
    missing = sorted(set(listed) - set(files))
    if missing:
        raise MissingFileError(f"{missing[0]} is missing from the bundle")
    return VerifiedBundle(manifest, manifest_bytes, signature, files)


def _member_name(member: tarfile.TarInfo) -> str:
    name = member.name.removeprefix("./").rstrip("/")
    if not (member.isfile() or member.isdir()):
        raise UnsafePathError(f"archive member {name!r} is a link or device")
    check_relative_path(name)
    return name


def _next_member(tar: tarfile.TarFile, members: Any, expected: str, limit: int) -> bytes:
    member = next(members, None)
    if member is None or _member_name(member) != expected:
        raise ManifestError(f"the archive does not start with {MANIFEST_FILE} and "
                            f"{SIGNATURE_FILE} (build it with `python -m models bundle`)")
    if member.size > limit:
        raise BundleError(f"{expected} holds {member.size} bytes (allowed {limit})")
    return _read_member(tar, member, limit)


def _read_member(tar: tarfile.TarFile, member: tarfile.TarInfo, limit: int) -> bytes:
    reader: IO[bytes] | None = tar.extractfile(member)
    if reader is None:
        raise UnsafePathError(f"archive member {member.name!r} is not a regular file")
    return reader.read(limit + 1)
