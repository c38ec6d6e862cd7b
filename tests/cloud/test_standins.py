"""The local stand-in for AWS IoT Core, through real processes and the real SDK: the ACL has
the store policy's effect, unknown CAs are refused, the cloud's shared subscription works,
IoT Core's payload limit holds, and persistent sessions survive a broker restart."""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from awscrt import mqtt5
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from cloud_sync import topics
from cloud_sync.fleet.policy import THING, store_policy_document
from cloud_sync.link.credentials import LinkCredentials
from cloud_sync.link.mqtt import LinkConnectError, LinkOperationError
from cloud_sync.local.broker import CLOUD_IDENTITY, MAX_PACKET_SIZE, render_acl
from cloud_sync.local.pki import LocalCA, make_key_and_csr
from tests.cloud.conftest import Inbox, unique_store, wait_until

ACCEPTED = {mqtt5.PubackReasonCode.SUCCESS, mqtt5.PubackReasonCode.NO_MATCHING_SUBSCRIBERS}


def test_the_acl_is_the_store_policy_in_mosquitto_form() -> None:
    # Policy resources -> (mosquitto access, pattern): the thing name is the certificate's CN
    # (%u); a trailing `*` is `#`; subscribe and receive are both mosquitto's `read`.
    access = {"iot:Publish": "write", "iot:Subscribe": "read", "iot:Receive": "read"}
    from_policy = set()
    for statement in store_policy_document("eu-west-1", "123456789012")["Statement"]:
        if statement["Action"] not in access:
            continue
        for resource in statement["Resource"]:
            topic = resource.split(":", 5)[5].split("/", 1)[1]
            assert topic.endswith("*")
            from_policy.add((access[statement["Action"]],
                             topic.replace(THING, "%u").removesuffix("*") + "#"))
    patterns = {tuple(line.split()[1:]) for line in render_acl().splitlines()
                if line.startswith("pattern ")}
    assert patterns == from_policy


def lake_client(connect, store_credentials, inbox: Inbox, **kwargs):  # type: ignore[no-untyped-def]
    cloud = connect(store_credentials(CLOUD_IDENTITY), f"lake-{unique_store()}", inbox,
                    **kwargs)
    suback = cloud.subscribe([topics.lake_subscription()])
    assert suback.reason_codes == [mqtt5.SubackReasonCode.GRANTED_QOS_1]
    return cloud


def test_a_store_publishes_only_under_its_own_topics(connect, store_credentials) -> None:
    a, b = unique_store("a"), unique_store("b")
    lake = Inbox()
    lake_client(connect, store_credentials, lake)
    client = connect(store_credentials(a))

    own = client.publish(topics.uplink_topic(a), b"mine")
    other = client.publish(topics.uplink_topic(b), b"forged")
    jobs = client.publish(topics.jobs_prefix(a) + "start-next", b"{}")

    assert own is not None and own.reason_code == mqtt5.PubackReasonCode.SUCCESS
    # Mosquitto answers a publish its ACL denies with a real PUBACK 0x87, as IoT Core does.
    assert other is not None and other.reason_code == mqtt5.PubackReasonCode.NOT_AUTHORIZED
    assert jobs is not None and jobs.reason_code in ACCEPTED
    assert lake.wait_for(1)
    time.sleep(0.2)  # a forged batch would have arrived by now
    assert lake.topics == [topics.uplink_topic(a)]
    assert client.connected.is_set()  # a denied publish does not cost the connection


def test_lake_workers_share_the_uplink(connect, store_credentials) -> None:
    store = unique_store()
    first, second = Inbox(), Inbox()
    lake_client(connect, store_credentials, first)
    lake_client(connect, store_credentials, second)
    uplink = connect(store_credentials(store))
    sent = [f"batch {i}".encode() for i in range(20)]
    for payload in sent:
        uplink.publish(topics.uplink_topic(store), payload)
    assert wait_until(lambda: len(first.packets) + len(second.packets) >= len(sent))
    time.sleep(0.2)
    # Each batch to exactly one worker of the group, and both got some.
    assert sorted(first.payloads + second.payloads) == sorted(sent)
    assert first.packets and second.packets


def test_a_store_cannot_read_another_stores_commands(connect, store_credentials) -> None:
    a, b = unique_store("a"), unique_store("b")
    inbox_a, inbox_b = Inbox(), Inbox()
    client_a = connect(store_credentials(a), on_publish=inbox_a)
    client_b = connect(store_credentials(b), on_publish=inbox_b)
    cloud = connect(store_credentials(CLOUD_IDENTITY), f"downlink-{a}")

    suback = client_a.subscribe([topics.command_prefix(b) + "#", topics.command_prefix(a) + "#"])
    client_b.subscribe([topics.command_prefix(b) + "#"])
    # IoT Core refuses the subscription itself (0x87); mosquitto 2.0's acl_file grants it and
    # checks `read` when delivering instead. Either way A must never receive B's commands.
    assert suback.reason_codes[0] in {mqtt5.SubackReasonCode.GRANTED_QOS_1,
                                      mqtt5.SubackReasonCode.NOT_AUTHORIZED}
    assert suback.reason_codes[1] == mqtt5.SubackReasonCode.GRANTED_QOS_1

    cloud.publish(topics.command_topic(b, "catalog"), b"for b only")
    cloud.publish(topics.command_topic(a, "catalog"), b"for a")
    assert inbox_b.wait_for(1) and inbox_a.wait_for(1)
    time.sleep(0.2)
    assert inbox_a.payloads == [b"for a"]
    assert inbox_b.payloads == [b"for b only"]


def test_a_certificate_from_an_unknown_ca_is_refused(local_cloud, tmp_path: Path,
                                                     connect) -> None:
    stranger = LocalCA.open_or_create(tmp_path / "stranger-ca")
    cert, key = stranger.issue("store-1")  # a store id the broker would otherwise accept
    (tmp_path / "c.pem").write_bytes(cert)
    (tmp_path / "c.key").write_bytes(key)
    credentials = LinkCredentials("store-1", local_cloud.broker.host, local_cloud.broker.port,
                                  tmp_path / "c.pem", tmp_path / "c.key",
                                  local_cloud.broker.ca_path)
    with pytest.raises(LinkConnectError, match="TLS"):
        connect(credentials, timeout=5)


def test_iot_core_payload_limit(local_cloud, connect, store_credentials) -> None:
    store = unique_store()
    lake = Inbox()
    lake_client(connect, store_credentials, lake)
    client = connect(store_credentials(store))
    assert client.negotiated is not None
    assert client.negotiated.maximum_packet_size_to_server == MAX_PACKET_SIZE

    largest = os.urandom(128 * 1024)
    puback = client.publish(topics.uplink_topic(store), largest)
    assert puback is not None and puback.reason_code == mqtt5.PubackReasonCode.SUCCESS
    assert lake.wait_for(1) and lake.payloads == [largest]

    # awscrt refuses, before sending, a packet over the broker's announced maximum ...
    with pytest.raises(LinkOperationError, match="PACKET_VALIDATION"):
        client.publish(topics.uplink_topic(store), b"x" * 200 * 1024)
    assert client.connected.is_set()


def test_the_broker_disconnects_a_client_that_ignores_the_limit(local_cloud,
                                                                store_credentials) -> None:
    # ... and a client that does not check (paho) is disconnected by the broker with 0x95.
    credentials = store_credentials(unique_store())
    reasons: list[str] = []
    client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=credentials.thing_name,
                         protocol=paho.MQTTv5)
    client.tls_set(ca_certs=str(credentials.ca), certfile=str(credentials.certificate),
                   keyfile=str(credentials.private_key))
    client.on_disconnect = lambda _c, _u, _f, reason, _p: reasons.append(str(reason))
    client.connect(credentials.host, credentials.port)
    client.loop_start()
    try:
        assert wait_until(client.is_connected)
        client.publish(topics.uplink_topic(credentials.thing_name), b"x" * 200 * 1024, qos=1)
        assert wait_until(lambda: bool(reasons))
    finally:
        client.loop_stop()
        client.disconnect()
    # paho sees DISCONNECT 0x95 ("Packet too large") or, when the socket closes before it
    # reads that packet, an unspecified error; the broker's log says which rule it applied.
    assert reasons[0] in {"Packet too large", "Unspecified error"}
    log_line = f"Client {credentials.thing_name} disconnected due to oversize packet"
    assert wait_until(lambda: log_line in local_cloud.broker.log_tail(200))


@pytest.mark.parametrize("hard", [False, True], ids=["sigterm", "sigkill"])
def test_a_restart_keeps_persistent_sessions_and_queued_messages(
        local_cloud, connect, store_credentials, hard: bool) -> None:
    store = unique_store()
    credentials = store_credentials(store)
    lake = Inbox()
    lake_link = lake_client(connect, store_credentials, lake, clean=False)
    cloud = connect(store_credentials(CLOUD_IDENTITY), f"downlink-{store}")
    first = connect(credentials, clean=False)
    first.subscribe([topics.command_prefix(store) + "#"])
    first.stop()  # the store goes offline; its session stays on the broker
    sent = [f"command {i}".encode() for i in range(3)]
    for payload in sent:
        puback = cloud.publish(topics.command_topic(store, "masterdata"), payload)
        assert puback is not None and puback.reason_code == mqtt5.PubackReasonCode.SUCCESS
    if hard:
        # SIGKILL keeps only what the last autosave wrote: mosquitto saves when more than
        # `autosave_interval` (1 s) whole seconds have passed, so every 2 s in practice.
        time.sleep(2.5)

    local_cloud.broker.restart(hard=hard)

    # The store comes back as a new process and finds its session with the queued commands.
    inbox = Inbox()
    back = connect(credentials, on_publish=inbox, clean=False)
    assert back.session_present
    assert inbox.wait_for(len(sent)), inbox.payloads
    assert inbox.payloads == sent
    # The lake's persistent client reconnected by itself, into its kept session, and
    # subscribed again (Mosquitto 2.0.11 restores sessions without `$share` subscriptions).
    assert wait_until(lambda: lake_link.resubscriptions >= 1)
    assert lake_link.session_present
    connect(credentials, f"{store}-uplink").publish(topics.uplink_topic(store), b"after")
    assert lake.wait_for(1)
    assert lake.payloads == [b"after"]


def test_a_reconnect_without_a_session_subscribes_again(local_cloud, connect,
                                                        store_credentials) -> None:
    store = unique_store()
    lake = Inbox()
    lake_link = lake_client(connect, store_credentials, lake)  # clean: no session kept
    local_cloud.broker.restart()
    assert wait_until(lambda: lake_link.resubscriptions >= 1)
    assert lake_link.session_present is False
    connect(store_credentials(store)).publish(topics.uplink_topic(store), b"again")
    assert lake.wait_for(1)
    assert lake.payloads == [b"again"]


def test_local_ca_files_and_csr_signing(tmp_path: Path) -> None:
    ca = LocalCA.open_or_create(tmp_path / "ca")
    assert stat.S_IMODE((tmp_path / "ca" / "ca.key").stat().st_mode) == 0o600
    assert LocalCA.open_or_create(tmp_path / "ca").ca_pem == ca.ca_pem  # reopened, not new

    key_pem, csr_pem = make_key_and_csr("store-9")
    cert = x509.load_pem_x509_certificate(ca.sign_csr(csr_pem))
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "store-9"
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.CLIENT_AUTH in eku
    assert key_pem.startswith(b"-----BEGIN PRIVATE KEY-----")

    server = x509.load_pem_x509_certificate(ca.issue("broker", server_names=["broker"])[0])
    names = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert {"broker", "localhost"} <= set(names.get_values_for_type(x509.DNSName))
    assert [str(ip) for ip in names.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
