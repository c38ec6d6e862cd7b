"""``manifest.json``: what a bundle holds, how it was trained, and each file's SHA-256 and size.

The signature covers the manifest's exact bytes, so the manifest is only parsed after the
signature verifies, and it is written once, never re-serialised after signing. Each file's
size is listed so a verifier can refuse an oversized file before reading it, and bound what
it unpacks by what the signed manifest allows.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import PurePosixPath
from typing import Any

from models.bundle.errors import ManifestError, UnsafePathError

MANIFEST_FILE = "manifest.json"
SIGNATURE_FILE = "manifest.sig"
FORMAT = "instore-model-bundle"
# Bump on an incompatible change of this layout; verifiers refuse versions they don't know.
# 2: `files` maps a path to {"sha256", "bytes"} (1 listed digests only).
FORMAT_VERSION = 2
# Caps read before anything is trusted: today's manifests are a few KB, bundles a few MB.
MAX_MANIFEST_BYTES = 1 << 20
MAX_SIGNATURE_BYTES = 4096
MAX_BUNDLE_BYTES = 256 << 20
MAX_BUNDLE_FILES = 100
REQUIRED_FIELDS: dict[str, type] = {
    "format": str,
    "format_version": int,
    "name": str,
    "version": str,
    "created_at": str,
    "feature_schemas": dict,
    "training_data": dict,
    "metrics": dict,
    "files": dict,
}
_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class ListedFile:
    """A file as the signed manifest lists it."""

    sha256: str
    bytes: int


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def check_relative_path(name: str) -> PurePosixPath:
    """A listed file's path: relative, POSIX, no ``..``, no backslash or drive."""
    path = PurePosixPath(name)
    if (
        not name
        or "\\" in name
        or path.is_absolute()
        or any(part in ("..", "") for part in name.split("/"))
        or ":" in path.parts[0]
    ):
        raise UnsafePathError(f"path {name!r} escapes the bundle directory")
    return path


def make_manifest(
    *,
    name: str,
    version: str,
    files: dict[str, bytes],
    feature_schemas: dict[str, int],
    training_data: dict[str, Any],
    metrics: dict[str, Any],
    created_at: datetime | None = None,
) -> bytes:
    """Serialise a manifest for ``files`` (path → content); returns the bytes to sign."""
    for path in files:
        check_relative_path(path)
    created = (created_at or datetime.now(UTC)).astimezone(UTC)
    doc = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "name": name,
        "version": version,
        "created_at": created.isoformat(timespec="seconds").replace("+00:00", "Z"),
        "feature_schemas": dict(sorted(feature_schemas.items())),
        "training_data": training_data,
        "metrics": metrics,
        "files": {p: {"sha256": sha256_hex(files[p]), "bytes": len(files[p])}
                  for p in sorted(files)},
    }
    return (json.dumps(doc, indent=2, sort_keys=False, allow_nan=False) + "\n").encode()


def parse_manifest(data: bytes) -> dict[str, Any]:
    """Parse and validate manifest bytes (call only after the signature verified)."""
    try:
        doc = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ManifestError(f"{MANIFEST_FILE} is not valid JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise ManifestError(f"{MANIFEST_FILE} is not a JSON object")
    for key, typ in REQUIRED_FIELDS.items():
        if not isinstance(doc.get(key), typ):
            raise ManifestError(f"{MANIFEST_FILE}: field {key!r} missing or not a {typ.__name__}")
    if doc["format"] != FORMAT or doc["format_version"] != FORMAT_VERSION:
        raise ManifestError(
            f"unsupported bundle format {doc['format']!r} v{doc['format_version']}"
        )
    doc["files"] = listed_files(doc["files"])
    return doc


def listed_files(files: dict[str, Any]) -> dict[str, ListedFile]:
    """The manifest's `files`, checked: safe relative paths, digests, sizes within the caps."""
    if not files:
        raise ManifestError(f"{MANIFEST_FILE} lists no files")
    if len(files) > MAX_BUNDLE_FILES:
        raise ManifestError(f"{MANIFEST_FILE} lists {len(files)} files (limit {MAX_BUNDLE_FILES})")
    listed: dict[str, ListedFile] = {}
    for path, entry in files.items():
        check_relative_path(path)
        if path in (MANIFEST_FILE, SIGNATURE_FILE):
            raise ManifestError(f"{MANIFEST_FILE} may not list {path!r}")
        digest = entry.get("sha256") if isinstance(entry, dict) else None
        size = entry.get("bytes") if isinstance(entry, dict) else None
        if not isinstance(digest, str) or not _SHA256_HEX.match(digest):
            raise ManifestError(f"{MANIFEST_FILE}: {path!r} has no valid SHA-256 hex digest")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise ManifestError(f"{MANIFEST_FILE}: {path!r} has no valid size in bytes")
        listed[path] = ListedFile(digest, size)
    total = sum(f.bytes for f in listed.values())
    if total > MAX_BUNDLE_BYTES:
        raise ManifestError(f"bundle lists {total} bytes of files (limit {MAX_BUNDLE_BYTES})")
    return listed
