"""The KMS signer against moto's KMS (real boto3 calls): the key's public half is the fleet
key, a KMS ECDSA_SHA_256 signature of the manifest verifies as ``manifest.sig``, and the
signer sends KMS the manifest's digest (MessageType=DIGEST).

moto does not implement DIGEST: it hashes the 32 bytes it is given once more. So a signature
from `KmsSigner.sign` under moto is checked as a signature over the digest, which proves the
digest is what went to KMS; real KMS signs the digest as is, which equals the RAW signature
of the manifest checked in the first test."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from cloud_sync.local.stack import LocalCloud
from cloud_sync.release.kms_signer import KmsSigner
from models.bundle import BundleKeyError, SignatureError
from models.bundle.signing import Signer, encode_signature, manifest_digest, verify

MANIFEST = b'{"format": "instore-model-bundle", "version": "2026.12.06"}\n'


@pytest.fixture(scope="module")
def kms(local_cloud: LocalCloud) -> Any:
    return local_cloud.boto3_client("kms")


def _key(kms: Any, spec: str = "ECC_NIST_P256") -> str:
    return str(kms.create_key(KeySpec=spec, KeyUsage="SIGN_VERIFY")["KeyMetadata"]["KeyId"])


def test_a_kms_p256_signature_is_a_valid_manifest_sig(kms: Any) -> None:
    key_id = _key(kms)
    signer = KmsSigner(kms, key_id)
    assert isinstance(signer, Signer)
    public = signer.public_key()
    raw = kms.sign(KeyId=key_id, Message=MANIFEST, MessageType="RAW",
                   SigningAlgorithm="ECDSA_SHA_256")["Signature"]
    verify(MANIFEST, encode_signature(raw), public)
    with pytest.raises(SignatureError):
        verify(MANIFEST.replace(b"12.06", b"12.07"), encode_signature(raw), public)


def test_the_signer_sends_kms_the_manifest_digest(kms: Any) -> None:
    signer = KmsSigner(kms, _key(kms))
    sig_file = signer.sign(MANIFEST)
    der = base64.b64decode(sig_file.strip(), validate=True)
    assert sig_file.endswith(b"\n")
    # moto signed SHA-256(digest): valid over the digest as a message, i.e. KMS was given
    # the 32-byte digest, not the manifest.
    signer.public_key().verify(der, manifest_digest(MANIFEST), ec.ECDSA(hashes.SHA256()))


def test_a_kms_key_of_another_kind_is_refused(kms: Any) -> None:
    with pytest.raises(BundleKeyError, match="not ECC_NIST_P256/SIGN_VERIFY"):
        KmsSigner(kms, _key(kms, "ECC_NIST_P384")).public_key()
    with pytest.raises(BundleKeyError, match="RSA_2048"):
        KmsSigner(kms, _key(kms, "RSA_2048")).public_key()
