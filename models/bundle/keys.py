"""The fleet's bundle-signing keys as PEM files: ECDSA on NIST P-256 (secp256r1).

The cloud signs bundles; every edge holds the public key. P-256 rather than Ed25519
because production keys live in AWS KMS (``ECC_NIST_P256``) or an HSM, where P-256 is
available everywhere; see :mod:`models.bundle.signing`. The PEM private key is for
development, tests and a single store's own training; the fleet signs with KMS.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from models.bundle.errors import BundleKeyError

logger = logging.getLogger(__name__)

PRIVATE_KEY_FILE = "bundle_signing_key.pem"
PUBLIC_KEY_FILE = "bundle_signing_key.pub.pem"
# Owner read/write only: the private key signs what every store will run.
PRIVATE_KEY_MODE = 0o600
# The one curve the fleet accepts. The signature scheme follows from the key type, so the
# verifier never reads an algorithm name from the (untrusted) bundle.
CURVE = ec.SECP256R1
KEY_DESCRIPTION = "an ECDSA P-256 (secp256r1) key"

SigningKey = ec.EllipticCurvePrivateKey
FleetPublicKey = ec.EllipticCurvePublicKey


def generate_keypair(out_dir: Path) -> tuple[Path, Path]:
    """Write a new key pair into ``out_dir``; refuses to overwrite an existing private key."""
    out_dir.mkdir(parents=True, exist_ok=True)
    priv_path, pub_path = out_dir / PRIVATE_KEY_FILE, out_dir / PUBLIC_KEY_FILE
    if priv_path.exists():
        raise BundleKeyError(f"{priv_path} already exists; not overwriting a signing key")
    key = ec.generate_private_key(CURVE())
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
    logger.info("generated ECDSA P-256 key pair in %s", out_dir)
    return priv_path, pub_path


def _read(path: Path) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise BundleKeyError(f"cannot read key file {path}: {exc.strerror}") from exc


def _describe(key: object) -> str:
    curve = getattr(key, "curve", None)
    return f"an EC key on {curve.name}" if curve is not None else f"a {type(key).__name__}"


def check_private_key(key: object, source: object = "the signing key") -> SigningKey:
    """``key`` if it is a P-256 private key, else a :class:`BundleKeyError` saying what it is."""
    if not (isinstance(key, ec.EllipticCurvePrivateKey) and isinstance(key.curve, CURVE)):
        raise BundleKeyError(f"{source} holds {_describe(key)}, not {KEY_DESCRIPTION}")
    return key


def check_public_key(key: object, source: object = "the fleet public key") -> FleetPublicKey:
    """``key`` if it is a P-256 public key, else a :class:`BundleKeyError` saying what it is."""
    if not (isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, CURVE)):
        raise BundleKeyError(f"{source} holds {_describe(key)}, not {KEY_DESCRIPTION}")
    return key


def load_private_key(path: Path, password: bytes | None = None) -> SigningKey:
    try:
        key = serialization.load_pem_private_key(_read(path), password=password)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise BundleKeyError(f"{path} is not a readable PEM private key: {exc}") from exc
    return check_private_key(key, path)


def load_public_key(path: Path) -> FleetPublicKey:
    try:
        key = serialization.load_pem_public_key(_read(path))
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise BundleKeyError(f"{path} is not a readable PEM public key: {exc}") from exc
    return check_public_key(key, path)


def public_key_pem(key: FleetPublicKey) -> bytes:
    """The SubjectPublicKeyInfo PEM of ``key`` (what KMS ``GetPublicKey`` returns as DER)."""
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
