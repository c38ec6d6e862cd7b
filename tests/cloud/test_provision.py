"""Provisioning stores through moto's IoT (real boto3 over HTTP) with the local CA, then
connecting to the TLS broker with the credentials written; and `cloud-sync fleet provision`."""

from __future__ import annotations

import json
import signal
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from awscrt import mqtt5

from cloud_sync import topics
from cloud_sync.cli import main
from cloud_sync.fleet.policy import STORE_POLICY_NAME, store_policy_json
from cloud_sync.fleet.provision import (
    FLEET_GROUP,
    AwsIssuedCertificates,
    OwnCACertificates,
    ProvisioningError,
    provision_store,
)
from cloud_sync.link.credentials import LinkCredentials
from cloud_sync.local.stack import LAKE_BUCKET, LocalCloud
from tests.cloud.conftest import unique_store, wait_until

ACCOUNT = "123456789012"  # moto's default account


def provision(local_cloud: LocalCloud, store: str, out: Path) -> LinkCredentials:
    return provision_store(local_cloud.boto3_client("iot"), store, out,
                           endpoint_host=local_cloud.broker.host,
                           endpoint_port=local_cloud.broker.port,
                           issuer=OwnCACertificates(local_cloud.ca))


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_provisioned_store_connects_within_its_policy(local_cloud, tmp_path: Path,
                                                        connect) -> None:
    store, other = unique_store("p"), unique_store("p")
    credentials = provision(local_cloud, store, tmp_path)

    directory = tmp_path / store
    document = json.loads((directory / "link.json").read_text())
    assert document == {"thing_name": store, "host": local_cloud.broker.host,
                        "port": local_cloud.broker.port, "certificate": "certificate.pem",
                        "private_key": "private.key", "ca": "ca.pem",
                        "pseudonym_key_file": "pseudonym.key"}
    assert mode(directory / "private.key") == mode(directory / "pseudonym.key") == 0o600
    assert mode(tmp_path / "pseudonym.key") == 0o600
    assert credentials.pseudonym_key == (tmp_path / "pseudonym.key").read_bytes()
    assert len(credentials.pseudonym_key) == 32

    client = connect(LinkCredentials.load(directory))
    own = client.publish(topics.uplink_topic(store), b"batch")
    forged = client.publish(topics.uplink_topic(other), b"batch")
    assert own is not None and own.reason_code in {mqtt5.PubackReasonCode.SUCCESS,
                                                   mqtt5.PubackReasonCode.NO_MATCHING_SUBSCRIBERS}
    assert forged is not None and forged.reason_code == mqtt5.PubackReasonCode.NOT_AUTHORIZED


def test_provisioning_twice_reissues_nothing(local_cloud, tmp_path: Path) -> None:
    iot = local_cloud.boto3_client("iot")
    store = unique_store("p")
    provision(local_cloud, store, tmp_path)
    files = {p.name: p.read_bytes() for p in (tmp_path / store).iterdir()}
    principals = iot.list_thing_principals(thingName=store)["principals"]

    provision(local_cloud, store, tmp_path)

    assert {p.name: p.read_bytes() for p in (tmp_path / store).iterdir()} == files
    assert iot.list_thing_principals(thingName=store)["principals"] == principals
    assert len(principals) == 1
    assert iot.list_attached_policies(target=principals[0])["policies"][0]["policyName"] \
        == STORE_POLICY_NAME
    members = iot.list_things_in_thing_group(thingGroupName=FLEET_GROUP)["things"]
    assert members.count(store) == 1
    assert len(iot.list_policy_versions(policyName=STORE_POLICY_NAME)["policyVersions"]) == 1


def test_a_lost_certificate_is_replaced(local_cloud, tmp_path: Path, connect) -> None:
    store = unique_store("p")
    first = provision(local_cloud, store, tmp_path)
    old_pem = first.certificate.read_bytes()
    (tmp_path / store / "private.key").unlink()  # the store's disk died

    second = provision(local_cloud, store, tmp_path)

    assert second.certificate.read_bytes() != old_pem
    principals = local_cloud.boto3_client("iot").list_thing_principals(thingName=store)
    assert len(principals["principals"]) == 2  # the old one stays for the operator to revoke
    connect(second)


def test_aws_issued_certificates_are_attached_and_written(local_cloud, tmp_path: Path) -> None:
    # moto signs these with its own CA, which the local broker does not trust: this checks
    # the control-plane half of the production path only.
    iot = local_cloud.boto3_client("iot")
    store = unique_store("aws")
    root_ca = tmp_path / "AmazonRootCA1.pem"
    root_ca.write_bytes(local_cloud.ca.ca_pem)  # any PEM stands in for Amazon's here
    credentials = provision_store(iot, store, tmp_path / "out", endpoint_host="example",
                                  endpoint_port=8883, issuer=AwsIssuedCertificates(root_ca))
    principals = iot.list_thing_principals(thingName=store)["principals"]
    assert len(principals) == 1
    pem = iot.describe_certificate(certificateId=principals[0].rsplit("/", 1)[1])
    assert pem["certificateDescription"]["certificatePem"] == credentials.certificate.read_text()
    assert credentials.ca.read_bytes() == local_cloud.ca.ca_pem
    assert mode(credentials.private_key) == 0o600
    with pytest.raises(ProvisioningError, match="root CA file"):
        AwsIssuedCertificates(tmp_path / "missing.pem")


def test_the_policy_in_iot_is_the_store_policy(local_cloud, tmp_path: Path) -> None:
    provision(local_cloud, unique_store("p"), tmp_path)
    policy = local_cloud.boto3_client("iot").get_policy(policyName=STORE_POLICY_NAME)
    assert json.loads(policy["policyDocument"]) == json.loads(
        store_policy_json(local_cloud.region, ACCOUNT))


@pytest.mark.parametrize("store", ["", "a/b", "x" * 65, "store+1", "st ore", "#", "ü",
                                   "cloud-sync"])
def test_a_bad_store_id_is_a_clear_error(local_cloud, tmp_path: Path, store: str) -> None:
    with pytest.raises(ProvisioningError, match="invalid store id"):
        provision(local_cloud, store, tmp_path)
    assert not (tmp_path / "pseudonym.key").exists()  # refused before anything was made


def test_the_lake_bucket_exists(local_cloud) -> None:
    buckets = local_cloud.boto3_client("s3").list_buckets()["Buckets"]
    assert LAKE_BUCKET in {b["Name"] for b in buckets}


def test_cli_provisions_against_the_running_local_cloud(local_cloud, tmp_path: Path,
                                                       capsys, connect) -> None:
    stores = [unique_store("cli"), unique_store("cli")]
    out = tmp_path / "stores"
    argv = ["fleet", "provision", "--local", str(local_cloud.directory), "--out", str(out)]
    for store in stores:
        argv += ["--store", store]

    assert main(argv) == 0

    printed = capsys.readouterr().out
    for store in stores:
        assert f"EDGE_CLOUD_CREDENTIALS={(out / store).resolve()}" in printed
        connect(LinkCredentials.load(out / store))
    keys = {LinkCredentials.load(out / s).pseudonym_key for s in stores}
    assert keys == {(out / "pseudonym.key").read_bytes()}  # one chain-wide key


@pytest.mark.parametrize(("argv", "message"), [
    (["--store", "bad/id"], "invalid store id 'bad/id'"),
    (["--store", "s1", "--local", "{missing}"], "no local cloud is running in"),
])
def test_cli_errors_are_one_line(local_cloud, tmp_path: Path, capsys, argv: list[str],
                                 message: str) -> None:
    argv = [a.format(missing=tmp_path / "nothing") for a in argv]
    if "--local" not in argv:
        argv += ["--local", str(local_cloud.directory)]
    code = main(["fleet", "provision", "--out", str(tmp_path / "out"), *argv])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("cloud-sync: ") and message in err


def test_credentials_load_names_what_is_missing(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"link\.json is missing"):
        LinkCredentials.load(tmp_path)
    (tmp_path / "link.json").write_text(json.dumps({"thing_name": "s1", "host": "h"}))
    with pytest.raises(ValueError, match=r"lacks the field.*port, certificate, private_key, ca"):
        LinkCredentials.load(tmp_path)
    (tmp_path / "link.json").write_text(json.dumps({
        "thing_name": "s1", "host": "h", "port": 1, "certificate": "certificate.pem",
        "private_key": "private.key", "ca": "ca.pem"}))
    with pytest.raises(ValueError, match=r"certificate file .*certificate\.pem is missing"):
        LinkCredentials.load(tmp_path)


def test_credentials_written_elsewhere_are_copied_and_load_back(local_cloud,
                                                                tmp_path: Path) -> None:
    issued = local_cloud.credentials(unique_store())  # files under the broker's directory
    with_key = LinkCredentials(**{**issued.__dict__, "pseudonym_key": b"k" * 32})

    with_key.write(tmp_path / "copy")
    loaded = LinkCredentials.load(tmp_path / "copy")

    assert loaded.certificate == tmp_path / "copy" / "certificate.pem"
    assert loaded.certificate.read_bytes() == issued.certificate.read_bytes()
    assert loaded.ca.read_bytes() == local_cloud.ca.ca_pem
    assert mode(loaded.private_key) == 0o600
    assert (loaded.thing_name, loaded.port, loaded.pseudonym_key) == (
        issued.thing_name, issued.port, b"k" * 32)
    assert "kkkk" not in repr(loaded)


def test_cli_local_up_runs_until_sigterm_and_stops_its_processes(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "cloud_sync.cli", "local", "up", "--dir", str(tmp_path)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert wait_until(lambda: (tmp_path / "local-cloud.json").exists(), timeout=30)
        info = LocalCloud.attach(tmp_path)
        socket.create_connection((info.broker_host, info.broker_port), timeout=2).close()
    finally:
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=20)
    assert process.returncode == 0, err
    assert f"{info.broker_host}:{info.broker_port}" in out and info.moto_endpoint in out
    assert not (tmp_path / "local-cloud.json").exists()
    with pytest.raises(OSError):
        socket.create_connection((info.broker_host, info.broker_port), timeout=2).close()
