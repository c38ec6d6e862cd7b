"""The production bundle signer: an AWS KMS key that never leaves KMS.

The key is an asymmetric ``ECC_NIST_P256`` key with ``KeyUsage=SIGN_VERIFY``. KMS is given
the manifest's SHA-256 (``MessageType=DIGEST``) and signs it with ``ECDSA_SHA_256``, so a
manifest of any size can be signed (``RAW`` messages are capped at 4,096 bytes) and only
32 bytes leave the build machine. The DER signature KMS returns is exactly what
``manifest.sig`` holds (base64, newline), and :func:`models.bundle.signing.verify` checks it
with the fleet public key, which ``public_key()`` fetches from KMS.

One code path: DIGEST always. moto's KMS (the local stand-in) does not implement DIGEST: it
hashes the 32-byte digest again, so its signatures do not verify; the tests check that a
KMS ``RAW`` signature of a manifest (what DIGEST equals on real KMS) verifies, and that this
signer sends the digest.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.serialization import load_der_public_key

from models.bundle import build_bundle
from models.bundle.errors import BundleKeyError
from models.bundle.keys import FleetPublicKey, check_public_key
from models.bundle.signing import ALGORITHM, encode_signature, manifest_digest

KEY_SPEC = "ECC_NIST_P256"
KEY_USAGE = "SIGN_VERIFY"


class KmsSigner:
    """A :class:`~models.bundle.signing.Signer` backed by the KMS key ``key_id`` (id, ARN or
    alias) through a boto3 KMS client."""

    def __init__(self, kms_client: Any, key_id: str) -> None:
        self.kms, self.key_id = kms_client, key_id

    def sign(self, manifest: bytes) -> bytes:
        response = self.kms.sign(KeyId=self.key_id, Message=manifest_digest(manifest),
                                 MessageType="DIGEST", SigningAlgorithm=ALGORITHM)
        return encode_signature(response["Signature"])

    def public_key(self) -> FleetPublicKey:
        """The key's public half, refused unless KMS says it is a P-256 signing key."""
        response = self.kms.get_public_key(KeyId=self.key_id)
        spec = response.get("KeySpec") or response.get("CustomerMasterKeySpec")
        if spec != KEY_SPEC or response.get("KeyUsage") != KEY_USAGE:
            raise BundleKeyError(f"KMS key {self.key_id} is {spec}/{response.get('KeyUsage')},"
                                 f" not {KEY_SPEC}/{KEY_USAGE}")
        if ALGORITHM not in response.get("SigningAlgorithms", [ALGORITHM]):
            raise BundleKeyError(f"KMS key {self.key_id} does not sign with {ALGORITHM}")
        return check_public_key(load_der_public_key(response["PublicKey"]),
                                f"KMS key {self.key_id}")


def build_with_kms(kms_client: Any, key_id: str, models_dir: Path, out: Path, *,
                   version: str) -> tuple[Path, FleetPublicKey]:
    """Build and sign a bundle of ``models_dir`` with the KMS key (``release create
    --models``); returns it with the key's public half, which verifies it before release."""
    signer = KmsSigner(kms_client, key_id)
    public = signer.public_key()  # a key of the wrong kind is refused before anything is built
    return build_bundle(models_dir, out, signer, version=version), public
