"""The manifest signature: ECDSA P-256 / SHA-256, scheme fixed by the fleet key's type."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from models.bundle import BundleKeyError, SignatureError, generate_keypair, load_private_key
from models.bundle.keys import load_public_key
from models.bundle.signing import PemSigner, Signer, as_signer, manifest_digest, verify

MANIFEST = b'{"name": "instore-models", "version": "1"}\n'


@pytest.fixture(scope="module")
def key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def test_pem_signer_writes_base64_der_and_verifies(key: ec.EllipticCurvePrivateKey) -> None:
    sig_file = PemSigner(key).sign(MANIFEST)
    assert sig_file.endswith(b"\n")
    der = base64.b64decode(sig_file.strip(), validate=True)
    assert der[0] == 0x30  # a DER SEQUENCE {r, s}
    verify(MANIFEST, sig_file, key.public_key())
    with pytest.raises(SignatureError, match="changed manifest"):
        verify(MANIFEST + b" ", sig_file, key.public_key())


def test_a_plain_ecdsa_sha256_signature_verifies(key: ec.EllipticCurvePrivateKey) -> None:
    # What any P-256 signer (KMS RAW or DIGEST, an HSM, openssl dgst -sha256) produces.
    der = key.sign(MANIFEST, ec.ECDSA(ec.hashes.SHA256()))  # type: ignore[attr-defined]
    verify(MANIFEST, base64.b64encode(der) + b"\n", key.public_key())
    assert len(manifest_digest(MANIFEST)) == 32


@pytest.mark.parametrize(
    "sig_file",
    [b"not base64!", b"", base64.b64encode(b"\x30" * 200), base64.b64encode(b"\x01\x02\x03")],
    ids=["not-base64", "empty", "too-long", "not-der"],
)
def test_malformed_signature_files_are_refused(
    key: ec.EllipticCurvePrivateKey, sig_file: bytes
) -> None:
    with pytest.raises(SignatureError):
        verify(MANIFEST, sig_file, key.public_key())


@pytest.mark.parametrize(
    "other",
    [lambda: ed25519.Ed25519PrivateKey.generate(),
     lambda: ec.generate_private_key(ec.SECP384R1()),
     lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048)],
    ids=["ed25519", "p384", "rsa"],
)
def test_other_key_types_and_curves_are_refused(tmp_path: Path, other) -> None:
    private = other()
    priv_path, pub_path = tmp_path / "k.pem", tmp_path / "k.pub.pem"
    priv_path.write_bytes(private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    pub_path.write_bytes(private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    with pytest.raises(BundleKeyError, match="not an ECDSA P-256"):
        load_private_key(priv_path)
    with pytest.raises(BundleKeyError, match="not an ECDSA P-256"):
        load_public_key(pub_path)
    with pytest.raises(BundleKeyError, match="not an ECDSA P-256"):
        verify(MANIFEST, b"AAAA\n", private.public_key())
    with pytest.raises(BundleKeyError):
        as_signer(private)


def test_generated_keypair_is_p256_and_signers_share_one_protocol(tmp_path: Path) -> None:
    priv, pub = generate_keypair(tmp_path)
    private = load_private_key(priv)
    assert isinstance(private.curve, ec.SECP256R1)
    signer = as_signer(private)
    assert isinstance(signer, PemSigner) and isinstance(signer, Signer)
    assert as_signer(signer) is signer
    verify(MANIFEST, signer.sign(MANIFEST), load_public_key(pub))
