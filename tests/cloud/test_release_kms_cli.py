"""`cloud-sync release create --models DIR --version V --kms-key-id KEY`: the bundle is signed
by the KMS key through `KmsSigner`, verified with the key's public half, and released. Run on
the production path (`--region --bucket --role-arn`, boto3 pointed at moto by
AWS_ENDPOINT_URL).

moto's KMS hashes a DIGEST message again (see test_release_kms.py), so under moto the bundle
is built and then refused, and its signature shows the key was given the manifest's digest.
The full release is shown with a KMS double that signs a digest as real KMS does: the one
thing that cannot run here."""

from __future__ import annotations

import base64
import tarfile
import uuid
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, utils
from sklearn.linear_model import LinearRegression

from cloud_sync.cli import main as cloud_sync
from cloud_sync.local.moto_server import DUMMY_ACCESS_KEY, DUMMY_SECRET_KEY
from cloud_sync.local.stack import LocalCloud
from cloud_sync.release.commands import LOCAL_ROLE_ARN
from cloud_sync.release.record import ReleaseStore
from models import onnx_export
from models.bundle import verify_bundle
from models.bundle.manifest import MANIFEST_FILE, SIGNATURE_FILE
from models.bundle.signing import manifest_digest
from tests.cloud.conftest import unique_store
from tests.cloud.stores import provision


class DigestKms:
    """Real KMS's answer to Sign with MessageType=DIGEST, from a local P-256 key."""

    def __init__(self) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.signed: list[str] = []

    def sign(self, *, KeyId: str, Message: bytes, MessageType: str,  # boto3 names
             SigningAlgorithm: str) -> dict[str, Any]:
        assert (MessageType, SigningAlgorithm, len(Message)) == ("DIGEST", "ECDSA_SHA_256", 32)
        self.signed.append(KeyId)
        der = self.key.sign(Message, ec.ECDSA(utils.Prehashed(hashes.SHA256())))
        return {"KeyId": KeyId, "Signature": der, "SigningAlgorithm": SigningAlgorithm}

    def get_public_key(self, *, KeyId: str) -> dict[str, Any]:
        der = self.key.public_key().public_bytes(serialization.Encoding.DER,
                                                 serialization.PublicFormat.SubjectPublicKeyInfo)
        return {"KeyId": KeyId, "PublicKey": der, "KeySpec": "ECC_NIST_P256",
                "KeyUsage": "SIGN_VERIFY", "SigningAlgorithms": ["ECDSA_SHA_256"]}


@pytest.fixture
def production(local_cloud: LocalCloud, monkeypatch: pytest.MonkeyPatch,
               tmp_path: Path) -> dict[str, Any]:
    """boto3 aimed at moto as at AWS; a bucket, a canary store and a models folder."""
    for name, value in {"AWS_ENDPOINT_URL": local_cloud.moto.endpoint_url,
                        "AWS_ACCESS_KEY_ID": DUMMY_ACCESS_KEY,
                        "AWS_SECRET_ACCESS_KEY": DUMMY_SECRET_KEY}.items():
        monkeypatch.setenv(name, value)
    bucket = f"kms-cli-{uuid.uuid4().hex[:8]}"
    local_cloud.boto3_client("s3").create_bucket(Bucket=bucket, CreateBucketConfiguration={
        "LocationConstraint": local_cloud.region})
    canary = unique_store("kms")
    provision(local_cloud, canary, tmp_path / "fleet")
    models = tmp_path / "models"
    models.mkdir()
    x = np.arange(20, dtype=np.float32).reshape(10, 2)
    onnx_export.save(onnx_export.to_onnx_float32(LinearRegression().fit(x, x[:, 0]), 2),
                     models / "timing.onnx")
    where = ["--region", local_cloud.region, "--bucket", bucket, "--role-arn", LOCAL_ROLE_ARN]
    return {"bucket": bucket, "canary": canary, "models": models, "where": where,
            "s3": local_cloud.boto3_client("s3"), "kms": local_cloud.boto3_client("kms")}


def create(production: dict[str, Any], key_id: str, out: Path, *extra: str) -> int:
    return cloud_sync(["release", "create", "--models", str(production["models"]),
                       "--version", "2026.12.06.7", "--kms-key-id", key_id, "--out", str(out),
                       "--canary", production["canary"], "--waves", "100", *extra,
                       *production["where"]])


def test_moto_kms_is_given_the_manifest_digest_and_its_signature_is_refused(
        production: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    kms = production["kms"]
    key_id = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"][
        "KeyId"]
    out = tmp_path / "bundle.tar.gz"
    assert create(production, key_id, out) == 2
    assert "bundle refused: manifest signature does not verify" in capsys.readouterr().err
    with tarfile.open(out) as tar:
        manifest = tar.extractfile(MANIFEST_FILE).read()  # type: ignore[union-attr]
        sig = tar.extractfile(SIGNATURE_FILE).read()  # type: ignore[union-attr]
    public = serialization.load_der_public_key(kms.get_public_key(KeyId=key_id)["PublicKey"])
    # moto signed SHA-256(digest): valid over the digest, so the key was sent the digest.
    public.verify(base64.b64decode(sig.strip()), manifest_digest(manifest),  # type: ignore[union-attr]
                  ec.ECDSA(hashes.SHA256()))
    assert production["s3"].list_objects_v2(Bucket=production["bucket"])["KeyCount"] == 0


def test_a_kms_signed_bundle_is_released(production: dict[str, Any], tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    double = DigestKms()
    aws_client = boto3.client
    monkeypatch.setattr(boto3, "client", lambda service, **kw: double if service == "kms"
                        else aws_client(service, **kw))
    out = tmp_path / "bundle.tar.gz"
    assert create(production, "alias/instore-bundles", out, "--probation-s", "60") == 0
    assert "release 2026_12_06_7-" in capsys.readouterr().out
    assert double.signed == ["alias/instore-bundles"]
    record = ReleaseStore(production["s3"], production["bucket"]).load("2026.12.06.7")
    assert record.waves[0]["things"] == [production["canary"]] and record.waves[0]["job_id"]
    uploaded = production["s3"].get_object(Bucket=production["bucket"],
                                           Key=record.bundle["key"])["Body"].read()
    assert uploaded == out.read_bytes()
    assert verify_bundle(out, double.key.public_key()).version == "2026.12.06.7"
    # Leave no job pending for the canary.
    assert cloud_sync(["release", "abort", *production["where"]]) == 0


@pytest.mark.parametrize(("args", "words"), [
    (["--models", "m", "--kms-key-id", "k"], "--models needs --kms-key-id and --version"),
    (["--models", "m", "--version", "1", "--public-key", "p.pem"], "--models needs"),
    (["--bundle", "b.tar.gz", "--public-key", "p.pem", "--version", "1"], "go with --models")])
def test_models_and_bundle_options_are_checked(args: list[str], words: str,
                                               production: dict[str, Any],
                                               capsys: pytest.CaptureFixture[str]) -> None:
    assert cloud_sync(["release", "create", *args, *production["where"]]) == 2
    assert words in capsys.readouterr().err
