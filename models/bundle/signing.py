"""The signature over a bundle's ``manifest.json``: ECDSA on P-256 with SHA-256.

``manifest.sig`` holds the base64 of the DER-encoded ECDSA signature (``SEQUENCE {r, s}``,
as KMS ``Sign`` and PKCS#11 return it) followed by a newline.

Why ECDSA P-256 / SHA-256 and not Ed25519: the fleet's production key lives in AWS KMS or
an HSM and never leaves it. KMS ``ECC_NIST_P256`` SIGN_VERIFY keys sign with
``ECDSA_SHA_256``, and accept ``MessageType=DIGEST``: we send the SHA-256 of the manifest,
so the manifest's size never matters (KMS caps ``RAW`` messages at 4096 bytes). P-256 is
offered in every KMS region, by CloudHSM and by any PKCS#11 HSM, and in FIPS mode; Ed25519
is not available everywhere and, where it is, only signs ``RAW`` messages.

There is no algorithm field in ``manifest.sig``: the scheme follows from the configured
fleet public key (a P-256 key, checked in :mod:`models.bundle.keys`), so a bundle cannot
choose how it is verified (no algorithm confusion).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from typing import Protocol, runtime_checkable

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from models.bundle.errors import SignatureError
from models.bundle.keys import FleetPublicKey, SigningKey, check_private_key, check_public_key

# A DER ECDSA P-256 signature is at most 72 bytes (two 33-byte integers and headers);
# anything longer is not one, and is refused before any parsing.
MAX_SIGNATURE_BYTES = 72
ALGORITHM = "ECDSA_SHA_256"  # the KMS SigningAlgorithm name of this scheme


@runtime_checkable
class Signer(Protocol):
    """Signs a manifest; returns the whole ``manifest.sig`` content (base64 DER + newline)."""

    def sign(self, manifest: bytes) -> bytes: ...


def manifest_digest(manifest: bytes) -> bytes:
    """SHA-256 of the manifest: what a KMS or HSM signer is given (``MessageType=DIGEST``)."""
    return hashlib.sha256(manifest).digest()


def encode_signature(der: bytes) -> bytes:
    """The ``manifest.sig`` content for a DER signature: base64 and a newline."""
    return base64.b64encode(der) + b"\n"


class PemSigner:
    """Signs with a P-256 private key held in memory (development, tests, a store's own models)."""

    def __init__(self, key: SigningKey) -> None:
        self._key = check_private_key(key)

    def sign(self, manifest: bytes) -> bytes:
        # Signing the digest (Prehashed) is the same operation a KMS DIGEST request does.
        der = self._key.sign(manifest_digest(manifest), ec.ECDSA(Prehashed(hashes.SHA256())))
        return encode_signature(der)


def as_signer(signer_or_key: Signer | SigningKey) -> Signer:
    """A :class:`Signer` for a signer, or for a loaded P-256 private key (older callers)."""
    # Any private key object goes to PemSigner, which refuses other types and curves: an
    # Ed25519 or RSA key has a ``sign`` method too and must not pass as a Signer.
    if hasattr(signer_or_key, "private_bytes") or not isinstance(signer_or_key, Signer):
        return PemSigner(check_private_key(signer_or_key))
    return signer_or_key


def verify(manifest: bytes, signature_file: bytes, public_key: FleetPublicKey) -> None:
    """Raise :class:`SignatureError` unless ``signature_file`` signs ``manifest``."""
    key = check_public_key(public_key)
    try:
        der = base64.b64decode(signature_file.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise SignatureError("manifest.sig is not base64") from exc
    if not der or len(der) > MAX_SIGNATURE_BYTES:
        raise SignatureError(
            f"manifest.sig holds {len(der)} bytes, not a DER ECDSA P-256 signature"
        )
    try:
        key.verify(der, manifest_digest(manifest), ec.ECDSA(Prehashed(hashes.SHA256())))
    except InvalidSignature as exc:
        raise SignatureError(
            "manifest signature does not verify: wrong public key or a changed manifest"
        ) from exc
