"""Build and sign a bundle from a directory of trained models (``python -m models train``).

The models directory holds ``*.onnx`` files and, for each, an optional ``<name>.json``
sidecar (feature names, ``feature_schema_version``, priors, metrics). ``train_summary.json``
there, when present, supplies the manifest's training-data summary and offline metrics.
"""

from __future__ import annotations

import json
import logging
import shutil
import tarfile
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

from models.bundle.errors import BundleError
from models.bundle.keys import SigningKey
from models.bundle.manifest import MANIFEST_FILE, SIGNATURE_FILE, make_manifest
from models.bundle.signing import Signer, as_signer

logger = logging.getLogger(__name__)

TRAIN_SUMMARY_FILE = "train_summary.json"
# Models, their JSON sidecars, and array files (the ranker's item statistics).
BUNDLED_SUFFIXES = (".onnx", ".json", ".npz")
DEFAULT_NAME = "instore-models"


def _collect(models_dir: Path) -> dict[str, bytes]:
    if not models_dir.is_dir():
        raise BundleError(f"models directory {models_dir} does not exist")
    files = {
        p.name: p.read_bytes()
        for p in sorted(models_dir.iterdir())
        if p.is_file() and p.suffix in BUNDLED_SUFFIXES
        and p.name not in (MANIFEST_FILE, TRAIN_SUMMARY_FILE)
    }
    if not any(name.endswith(".onnx") for name in files):
        raise BundleError(f"no .onnx model in {models_dir}")
    return files


def _json(data: bytes, name: str) -> dict[str, Any]:
    try:
        doc = json.loads(data)
    except json.JSONDecodeError as exc:
        raise BundleError(f"{name} is not valid JSON: {exc}") from exc
    return doc if isinstance(doc, dict) else {}


def build_bundle(
    models_dir: Path,
    out: Path,
    signer: Signer | SigningKey,
    *,
    version: str,
    name: str = DEFAULT_NAME,
    created_at: datetime | None = None,
) -> Path:
    """Write a signed bundle to ``out``: a directory, or a ``.tar.gz`` if it ends so.

    ``signer`` is a :class:`~models.bundle.signing.Signer` (a KMS key in production) or a
    loaded P-256 private key.
    """
    files = _collect(models_dir)
    feature_schemas = {}
    for fname, data in files.items():
        if fname.endswith(".json"):
            schema = _json(data, fname).get("feature_schema_version")
            if isinstance(schema, int):
                feature_schemas[Path(fname).stem] = schema
    summary_path = models_dir / TRAIN_SUMMARY_FILE
    summary = _json(summary_path.read_bytes(), TRAIN_SUMMARY_FILE) if summary_path.exists() else {}
    manifest = make_manifest(
        name=name,
        version=version,
        files=files,
        feature_schemas=feature_schemas,
        training_data=summary.get("training_data", {}),
        metrics=summary.get("metrics", {}),
        created_at=created_at,
    )
    signature = as_signer(signer).sign(manifest)
    if out.name.endswith(".tar.gz"):
        with tempfile.TemporaryDirectory() as tmp:
            staged = _write_dir(Path(tmp) / "bundle", files, manifest, signature)
            _write_tar(staged, out)
    else:
        _write_dir(out, files, manifest, signature)
    logger.info("built bundle %s %s (%d files) at %s", name, version, len(files), out)
    return out


def _write_dir(out: Path, files: dict[str, bytes], manifest: bytes, signature: bytes) -> Path:
    if out.exists() and any(out.iterdir()):
        raise BundleError(f"bundle directory {out} exists and is not empty")
    out.mkdir(parents=True, exist_ok=True)
    for fname, data in files.items():
        (out / fname).write_bytes(data)
    (out / MANIFEST_FILE).write_bytes(manifest)
    (out / SIGNATURE_FILE).write_bytes(signature)
    return out


def _write_tar(staged: Path, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp_out = out.with_name(out.name + ".partial")
    # The manifest and its signature first: a verifier checks them before reading the rest.
    first = (MANIFEST_FILE, SIGNATURE_FILE)
    ordered = sorted(staged.iterdir(), key=lambda p: (p.name not in first, first.index(p.name)
                                                      if p.name in first else 0, p.name))
    with tarfile.open(tmp_out, "w:gz") as tar:
        for p in ordered:
            info = tar.gettarinfo(str(p), arcname=p.name)
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            info.mode = 0o644
            with p.open("rb") as fh:
                tar.addfile(info, fh)
    shutil.move(tmp_out, out)
