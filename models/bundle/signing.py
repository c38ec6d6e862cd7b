"""Ed25519 signature of the manifest bytes, stored base64 in ``manifest.sig``."""

from __future__ import annotations

import base64
import binascii

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from models.bundle.errors import SignatureError

# Ed25519 signatures are always 64 bytes.
SIGNATURE_BYTES = 64


def sign(manifest: bytes, key: Ed25519PrivateKey) -> bytes:
    """The ``manifest.sig`` content: base64 of the signature and a newline."""
    return base64.b64encode(key.sign(manifest)) + b"\n"


def verify(manifest: bytes, signature_file: bytes, key: Ed25519PublicKey) -> None:
    """Raise :class:`SignatureError` unless ``signature_file`` signs ``manifest``."""
    try:
        sig = base64.b64decode(signature_file.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise SignatureError("manifest.sig is not base64") from exc
    if len(sig) != SIGNATURE_BYTES:
        raise SignatureError(f"manifest.sig holds {len(sig)} bytes, not an Ed25519 signature")
    try:
        key.verify(sig, manifest)
    except InvalidSignature as exc:
        raise SignatureError(
            "manifest signature does not verify: wrong public key or a changed manifest"
        ) from exc
