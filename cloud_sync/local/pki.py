"""A small certificate authority for the local stand-in of AWS IoT Core: one CA per local
stack, a client certificate per store (CN = thing name = store id) and the broker's server
certificate. Chains that bring their own CA to IoT Core use the same `sign_csr` path."""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Self

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

logger = logging.getLogger(__name__)

CA_CERT_FILE = "ca.pem"
CA_KEY_FILE = "ca.key"
CA_COMMON_NAME = "instore local CA"
# Long enough never to expire under a running demo; the CA lives as long as its directory.
CA_VALIDITY_DAYS = 3650
# 825 days: the longest leaf validity TLS clients (Apple's, notably) still accept.
LEAF_VALIDITY_DAYS = 825
# Clocks of a laptop and a container can disagree by a little; a cert "not yet valid" by a
# few seconds would fail the handshake for no reason.
CLOCK_SKEW = dt.timedelta(minutes=5)
LOCALHOST_NAMES: tuple[str, ...] = ("localhost", "127.0.0.1")
PRIVATE_MODE = 0o600


def _new_key() -> ec.EllipticCurvePrivateKey:
    # P-256: what IoT Core and every TLS stack here accept, and cheap to generate in tests.
    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def write_private(path: Path, data: bytes) -> None:
    """Write a secret readable by its owner only (created 0600, never world-readable)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_MODE)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    os.chmod(path, PRIVATE_MODE)  # an existing file keeps its old mode through O_CREAT


def make_key_and_csr(common_name: str) -> tuple[bytes, bytes]:
    """A fresh private key and a CSR for `common_name`, both PEM: (key_pem, csr_pem)."""
    key = _new_key()
    csr = (x509.CertificateSigningRequestBuilder().subject_name(_name(common_name))
           .sign(key, hashes.SHA256()))
    return _key_pem(key), csr.public_bytes(serialization.Encoding.PEM)


def _san(names: Sequence[str]) -> x509.SubjectAlternativeName:
    entries: list[x509.GeneralName] = []
    for name in dict.fromkeys([*names, *LOCALHOST_NAMES]):  # ordered, without duplicates
        try:
            entries.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            entries.append(x509.DNSName(name))
    return x509.SubjectAlternativeName(entries)


class LocalCA:
    """A CA key and self-signed certificate kept in a directory (`ca.pem`, `ca.key`)."""

    def __init__(self, directory: Path, key: ec.EllipticCurvePrivateKey,
                 certificate: x509.Certificate) -> None:
        self.directory = directory
        self._key = key
        self._certificate = certificate

    @classmethod
    def open_or_create(cls, directory: Path) -> Self:
        directory = Path(directory)
        cert_path, key_path = directory / CA_CERT_FILE, directory / CA_KEY_FILE
        if cert_path.exists() and key_path.exists():
            key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
            if not isinstance(key, ec.EllipticCurvePrivateKey):
                raise ValueError(f"{key_path} is not an EC private key")
            return cls(directory, key, x509.load_pem_x509_certificate(cert_path.read_bytes()))
        key = _new_key()
        now = dt.datetime.now(dt.UTC)
        name = _name(CA_COMMON_NAME)
        certificate = (
            x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - CLOCK_SKEW)
            .not_valid_after(now + dt.timedelta(days=CA_VALIDITY_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(
                digital_signature=True, key_cert_sign=True, crl_sign=True,
                content_commitment=False, key_encipherment=False, data_encipherment=False,
                key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                           critical=False)
            .sign(key, hashes.SHA256()))
        directory.mkdir(parents=True, exist_ok=True)
        write_private(key_path, _key_pem(key))
        cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        logger.info("created a local CA in %s", directory)
        return cls(directory, key, certificate)

    @property
    def ca_path(self) -> Path:
        return self.directory / CA_CERT_FILE

    @property
    def ca_pem(self) -> bytes:
        return self._certificate.public_bytes(serialization.Encoding.PEM)

    def issue(self, common_name: str, *,
              server_names: Sequence[str] = ()) -> tuple[bytes, bytes]:
        """A new key and certificate for `common_name`: (cert_pem, key_pem).

        Without `server_names` a client certificate (clientAuth); with them a server
        certificate for those names plus localhost and 127.0.0.1."""
        key = _new_key()
        cert = self._sign(_name(common_name), key.public_key(), LEAF_VALIDITY_DAYS,
                          server_names=server_names or None)
        return cert, _key_pem(key)

    def sign_csr(self, csr_pem: bytes, days: int = LEAF_VALIDITY_DAYS) -> bytes:
        """A client certificate for a CSR, keeping its subject (the key never leaves its owner)."""
        csr = x509.load_pem_x509_csr(csr_pem)
        if not csr.is_signature_valid:
            raise ValueError("the CSR's signature does not match its public key")
        public_key = csr.public_key()
        if not isinstance(public_key, ec.EllipticCurvePublicKey | rsa.RSAPublicKey):
            raise ValueError("the CSR's key must be EC or RSA")
        return self._sign(csr.subject, public_key, days, server_names=None)

    def _sign(self, subject: x509.Name, public_key: x509.CertificatePublicKeyTypes, days: int,
              *, server_names: Sequence[str] | None) -> bytes:
        now = dt.datetime.now(dt.UTC)
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server_names else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = (
            x509.CertificateBuilder().subject_name(subject)
            .issuer_name(self._certificate.subject).public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - CLOCK_SKEW).not_valid_after(now + dt.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                self._key.public_key()), critical=False))
        if server_names:
            builder = builder.add_extension(_san(server_names), critical=False)
        cert = builder.sign(self._key, hashes.SHA256())
        return cert.public_bytes(serialization.Encoding.PEM)


def common_name_of(cert_pem: bytes) -> str:
    """The subject CN of a PEM certificate (the thing name of a store's certificate)."""
    cert = x509.load_pem_x509_certificate(cert_pem)
    values = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(values[0].value) if values else ""
