"""Provisioning a store: its thing, its place in the fleet's thing group, the store policy,
a certificate, and the credentials directory the edge agent is pointed at.

`provision_store` is idempotent; run again for the same store it
- reuses the thing, the group membership and the policy (updating the policy with a new
  default version only when its document changed),
- reuses the certificate when the credentials directory already holds one that IoT knows as
  ACTIVE and attached to the thing, and only then issues nothing; otherwise (first run, files
  lost, certificate revoked) it issues a new one and attaches it, leaving older certificates
  attached for the operator to revoke (logged),
- rewrites the credentials directory with the same content.

Two ways to get a certificate, behind `CertificateIssuer`: IoT creates key and certificate
(`AwsIssuedCertificates`, production), or the chain's own CA signs a CSR made here and the
certificate is registered with IoT (`OwnCACertificates`; the local stack uses it).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from cloud_sync.fleet.policy import STORE_POLICY_NAME, store_policy_json
from cloud_sync.link.credentials import CERTIFICATE_FILE, PRIVATE_KEY_FILE, LinkCredentials
from cloud_sync.local.broker import CLOUD_IDENTITY
from cloud_sync.local.pki import LocalCA, make_key_and_csr, write_private

logger = logging.getLogger(__name__)

STORE_ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
FLEET_GROUP = "instore-stores"
PSEUDONYM_KEY_FILE = "pseudonym.key"
PSEUDONYM_KEY_BYTES = 32  # HMAC-SHA256 key: the hash's block of entropy, no more needed
# IoT keeps at most 5 versions of a policy; one must go before a sixth is created.
MAX_POLICY_VERSIONS = 5


class ProvisioningError(ValueError):
    """A store cannot be provisioned as asked (bad id, unusable key file, IoT refused)."""


def validate_store_id(store_id: str) -> str:
    """Store ids become thing names, client ids and topic levels: a safe subset only."""
    if not STORE_ID_PATTERN.fullmatch(store_id or ""):
        raise ProvisioningError(
            f"invalid store id {store_id!r}: use 1-64 letters, digits, '_' or '-' "
            "(it becomes the thing name and a topic level)")
    if store_id == CLOUD_IDENTITY:
        # The local broker grants this certificate name every topic.
        raise ProvisioningError(f"invalid store id {store_id!r}: reserved for the cloud services")
    return store_id


@dataclass(frozen=True)
class IssuedCertificate:
    certificate_pem: str
    private_key_pem: str
    certificate_arn: str


class CertificateIssuer(Protocol):
    """Obtains a registered, ACTIVE certificate for a store."""

    @property
    def server_ca(self) -> Path:
        """The CA a store trusts for the broker's server certificate."""
        ...

    def issue(self, iot: Any, store_id: str) -> IssuedCertificate: ...


class AwsIssuedCertificates:
    """IoT Core creates the key pair and certificate (signed by Amazon's CA)."""

    def __init__(self, root_ca: Path) -> None:
        self.root_ca = Path(root_ca)
        if not self.root_ca.is_file():
            raise ProvisioningError(f"root CA file {self.root_ca} does not exist "
                                    "(download AmazonRootCA1.pem)")

    @property
    def server_ca(self) -> Path:
        return self.root_ca

    def issue(self, iot: Any, store_id: str) -> IssuedCertificate:
        answer = iot.create_keys_and_certificate(setAsActive=True)
        return IssuedCertificate(answer["certificatePem"], answer["keyPair"]["PrivateKey"],
                                 answer["certificateArn"])


class OwnCACertificates:
    """The chain's own CA signs a CSR made here; IoT registers the certificate.

    The CA itself is registered once (with the verification certificate IoT asks for: CN =
    the account's registration code, signed by the CA's key)."""

    def __init__(self, ca: LocalCA, server_ca: Path | None = None) -> None:
        self.ca = ca
        self._server_ca = Path(server_ca) if server_ca else ca.ca_path

    @property
    def server_ca(self) -> Path:
        return self._server_ca

    def ensure_ca_registered(self, iot: Any) -> str:
        """The id of our CA in IoT, registering it the first time."""
        ca_pem = self.ca.ca_pem.decode()
        # Looked up by id, not listed: moto has no ListCACertificates. IoT's certificate id is
        # the SHA-256 of the DER certificate; moto by default hashes the PEM text: try both.
        for certificate_id in _certificate_id_candidates(ca_pem):
            try:
                iot.describe_ca_certificate(certificateId=certificate_id)
            except Exception as exc:
                if not _not_found(iot, exc):
                    raise
                continue
            return certificate_id
        code = iot.get_registration_code()["registrationCode"]
        verification, _key = self.ca.issue(code)
        answer = iot.register_ca_certificate(caCertificate=ca_pem,
                                             verificationCertificate=verification.decode(),
                                             setAsActive=True, allowAutoRegistration=False)
        logger.info("registered the chain's CA with IoT as %s", answer["certificateId"])
        return str(answer["certificateId"])

    def issue(self, iot: Any, store_id: str) -> IssuedCertificate:
        self.ensure_ca_registered(iot)
        key_pem, csr_pem = make_key_and_csr(store_id)
        cert_pem = self.ca.sign_csr(csr_pem).decode()
        answer = iot.register_certificate(certificatePem=cert_pem,
                                          caCertificatePem=self.ca.ca_pem.decode(),
                                          setAsActive=True)
        return IssuedCertificate(cert_pem, key_pem.decode(), answer["certificateArn"])


def _certificate_id_candidates(pem: str) -> list[str]:
    der = x509.load_pem_x509_certificate(pem.encode()).public_bytes(serialization.Encoding.DER)
    return [hashlib.sha256(der).hexdigest(), hashlib.sha256(pem.encode()).hexdigest()]


def _same_pem(a: str, b: str) -> bool:
    return "".join(a.split()) == "".join(b.split())


def _not_found(iot: Any, exc: Exception) -> bool:
    return isinstance(exc, iot.exceptions.ResourceNotFoundException)


def load_or_create_pseudonym_key(out_root: Path, key_file: Path | None = None) -> bytes:
    """The chain-wide pseudonym key: from `key_file`, else `out_root/pseudonym.key`, created
    there (0600) the first time. Every store must get the same key, or one shopper would get
    a different pseudonym in each store."""
    path = Path(key_file) if key_file else Path(out_root) / PSEUDONYM_KEY_FILE
    if path.is_file():
        key = path.read_bytes()
        if len(key) != PSEUDONYM_KEY_BYTES:
            raise ProvisioningError(f"pseudonym key {path} must hold exactly "
                                    f"{PSEUDONYM_KEY_BYTES} bytes, not {len(key)}")
        return key
    if key_file:
        raise ProvisioningError(f"pseudonym key file {path} does not exist")
    key = secrets.token_bytes(PSEUDONYM_KEY_BYTES)
    write_private(path, key)
    logger.info("created the chain's pseudonym key in %s", path)
    return key


def _arn_parts(arn: str) -> tuple[str, str, str]:
    """(partition, region, account) of an ARN."""
    parts = arn.split(":")
    return parts[1], parts[3], parts[4]


def _ensure_thing(iot: Any, store_id: str, thing_type: str | None) -> str:
    try:
        return str(iot.describe_thing(thingName=store_id)["thingArn"])
    except Exception as exc:
        if not _not_found(iot, exc):
            raise
    if thing_type:
        try:
            iot.describe_thing_type(thingTypeName=thing_type)
        except Exception as exc:
            if not _not_found(iot, exc):
                raise
            iot.create_thing_type(thingTypeName=thing_type)
    kwargs = {"thingTypeName": thing_type} if thing_type else {}
    arn = str(iot.create_thing(thingName=store_id, **kwargs)["thingArn"])
    logger.info("created thing %s", store_id)
    return arn


def _ensure_group(iot: Any, store_id: str) -> None:
    try:
        iot.describe_thing_group(thingGroupName=FLEET_GROUP)
    except Exception as exc:
        if not _not_found(iot, exc):
            raise
        iot.create_thing_group(thingGroupName=FLEET_GROUP)
        logger.info("created thing group %s", FLEET_GROUP)
    iot.add_thing_to_thing_group(thingGroupName=FLEET_GROUP, thingName=store_id)  # idempotent


def ensure_store_policy(iot: Any, region: str, account: str, partition: str = "aws") -> None:
    """Create the store policy, or make the wanted document its default version."""
    wanted = store_policy_json(region, account, partition)
    try:
        current = iot.get_policy(policyName=STORE_POLICY_NAME)
    except Exception as exc:
        if not _not_found(iot, exc):
            raise
        iot.create_policy(policyName=STORE_POLICY_NAME, policyDocument=wanted)
        logger.info("created IoT policy %s", STORE_POLICY_NAME)
        return
    if json.loads(current["policyDocument"]) == json.loads(wanted):
        return
    versions = iot.list_policy_versions(policyName=STORE_POLICY_NAME)["policyVersions"]
    if len(versions) >= MAX_POLICY_VERSIONS:
        oldest = min((v for v in versions if not v["isDefaultVersion"]),
                     key=lambda v: int(v["versionId"]))
        iot.delete_policy_version(policyName=STORE_POLICY_NAME,
                                  policyVersionId=oldest["versionId"])
    iot.create_policy_version(policyName=STORE_POLICY_NAME, policyDocument=wanted,
                              setAsDefault=True)
    logger.info("updated IoT policy %s to a new default version", STORE_POLICY_NAME)


def _reusable_certificate(iot: Any, store_id: str, store_dir: Path) -> str | None:
    """The ARN of the certificate in `store_dir` if IoT has it ACTIVE on this thing."""
    cert_file, key_file = store_dir / CERTIFICATE_FILE, store_dir / PRIVATE_KEY_FILE
    if not cert_file.is_file() or not key_file.is_file():
        return None
    local_pem = cert_file.read_text()
    for arn in iot.list_thing_principals(thingName=store_id).get("principals", []):
        if ":cert/" not in arn:
            continue
        description = iot.describe_certificate(
            certificateId=arn.rsplit("/", 1)[1])["certificateDescription"]
        if _same_pem(description["certificatePem"], local_pem):
            return str(arn) if description["status"] == "ACTIVE" else None
    return None


def provision_store(iot_client: Any, store_id: str, out_dir: Path, *, endpoint_host: str,
                    endpoint_port: int, issuer: CertificateIssuer, region: str | None = None,
                    account: str | None = None, pseudonym_key: bytes | None = None,
                    thing_type: str | None = None) -> LinkCredentials:
    """Register `store_id` with IoT and write its credentials to `out_dir/store_id/`.

    Region and account default to the thing's ARN (so no STS call is needed); the pseudonym
    key defaults to `out_dir/pseudonym.key`, created the first time."""
    iot = iot_client
    validate_store_id(store_id)
    out_dir = Path(out_dir)
    store_dir = out_dir / store_id
    if pseudonym_key is None:
        pseudonym_key = load_or_create_pseudonym_key(out_dir)
    if len(pseudonym_key) != PSEUDONYM_KEY_BYTES:
        raise ProvisioningError(f"the pseudonym key must be {PSEUDONYM_KEY_BYTES} bytes")

    thing_arn = _ensure_thing(iot, store_id, thing_type)
    partition, arn_region, arn_account = _arn_parts(thing_arn)
    _ensure_group(iot, store_id)
    ensure_store_policy(iot, region or arn_region, account or arn_account, partition)

    certificate_arn = _reusable_certificate(iot, store_id, store_dir)
    if certificate_arn is None:
        issued = issuer.issue(iot, store_id)
        store_dir.mkdir(parents=True, exist_ok=True)
        (store_dir / CERTIFICATE_FILE).write_text(issued.certificate_pem)
        write_private(store_dir / PRIVATE_KEY_FILE, issued.private_key_pem.encode())
        certificate_arn = issued.certificate_arn
        others = iot.list_thing_principals(thingName=store_id).get("principals", [])
        if others:
            logger.warning("store %s has older certificates attached (%s); revoke them when "
                           "the store runs on the new one", store_id, ", ".join(others))
        logger.info("issued certificate %s for store %s", certificate_arn, store_id)
    else:
        logger.info("store %s keeps its certificate %s", store_id, certificate_arn)
    iot.attach_policy(policyName=STORE_POLICY_NAME, target=certificate_arn)  # idempotent
    iot.attach_thing_principal(thingName=store_id, principal=certificate_arn)

    credentials = LinkCredentials(
        thing_name=store_id, host=endpoint_host, port=endpoint_port,
        certificate=store_dir / CERTIFICATE_FILE, private_key=store_dir / PRIVATE_KEY_FILE,
        ca=issuer.server_ca, pseudonym_key=pseudonym_key)
    credentials.write(store_dir)
    return LinkCredentials.load(store_dir)
