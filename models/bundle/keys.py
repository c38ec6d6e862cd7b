"""Ed25519 signing keys as PEM files: the cloud signs bundles, every edge holds the public key."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from models.bundle.errors import BundleKeyError

logger = logging.getLogger(__name__)

PRIVATE_KEY_FILE = "bundle_signing_key.pem"
PUBLIC_KEY_FILE = "bundle_signing_key.pub.pem"
# Owner read/write only: the private key signs what every store will run.
PRIVATE_KEY_MODE = 0o600


def generate_keypair(out_dir: Path) -> tuple[Path, Path]:
    """Write a new key pair into ``out_dir``; refuses to overwrite an existing private key."""
    out_dir.mkdir(parents=True, exist_ok=True)
    priv_path, pub_path = out_dir / PRIVATE_KEY_FILE, out_dir / PUBLIC_KEY_FILE
    if priv_path.exists():
        raise BundleKeyError(f"{priv_path} already exists; not overwriting a signing key")
    key = Ed25519PrivateKey.generate()
    priv_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd = os.open(priv_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_KEY_MODE)
    with os.fdopen(fd, "wb") as fh:
        fh.write(priv_pem)
    pub_path.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    logger.info("generated Ed25519 key pair in %s", out_dir)
    return priv_path, pub_path


def _read(path: Path) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise BundleKeyError(f"cannot read key file {path}: {exc.strerror}") from exc


def load_private_key(path: Path, password: bytes | None = None) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(_read(path), password=password)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise BundleKeyError(f"{path} is not a readable PEM private key: {exc}") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise BundleKeyError(f"{path} holds a {type(key).__name__}, not an Ed25519 key")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(_read(path))
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise BundleKeyError(f"{path} is not a readable PEM public key: {exc}") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise BundleKeyError(f"{path} holds a {type(key).__name__}, not an Ed25519 key")
    return key
