"""The simulator's batched MQTT 3.1.1 publisher: its packets byte for byte, and against a real
Mosquitto its flow control, reconnection with resend, and refusals."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import paho.mqtt.client as mqtt
import pytest

from edge_agent.broker import MosquittoBroker
from edge_agent.simulator import mqtt_packets as packets
from edge_agent.simulator.publisher import MqttPublisher, PublisherError

TOPIC = "stores/s1/shelf/SH-P000001"


# ------------------------------------------------------------------------------ packets
def _decode_publish(body: bytes) -> tuple[str, int, bytes]:
    topic_len = int.from_bytes(body[:2], "big")
    topic = body[2:2 + topic_len].decode()
    packet_id = int.from_bytes(body[2 + topic_len:4 + topic_len], "big")
    return topic, packet_id, body[4 + topic_len:]


# Payload sizes around the 1-, 2- and 3-byte boundaries of the remaining length.
@pytest.mark.parametrize("size", [0, 100, 127 - 4 - len(TOPIC), 128, 16_383 - 4 - len(TOPIC),
                                  16_384, 2_100_000])
def test_publish_packet_decodes_back(size: int) -> None:
    payload = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
    buffer = bytearray(packets.publish_packet(TOPIC.encode(), 513, payload))
    assert buffer[0] == packets.PUBLISH | packets.QOS1_FLAG
    [(kind, body)] = packets.split_packets(buffer)
    assert kind == packets.PUBLISH and not buffer
    assert _decode_publish(body) == (TOPIC, 513, payload)
    duplicate = packets.as_duplicate(packets.publish_packet(TOPIC.encode(), 513, payload))
    assert duplicate[0] & packets.DUP_FLAG and duplicate[1:] == bytes(
        packets.publish_packet(TOPIC.encode(), 513, payload))[1:]


def test_split_packets_waits_for_whole_packets() -> None:
    stream = (b"\x40\x02\x00\x07" + packets.publish_packet(b"a/b", 9, b"p" * 300)
              + b"\xd0\x00" + b"\x40\x02\x01\x00")
    buffer, seen = bytearray(), []
    for byte in stream:  # the worst case: one byte per read
        buffer.append(byte)
        seen += packets.split_packets(buffer)
    assert [kind for kind, _ in seen] == [packets.PUBACK, packets.PUBLISH, packets.PINGRESP,
                                          packets.PUBACK]
    assert packets.packet_id_of(seen[0][1]) == 7 and packets.packet_id_of(seen[3][1]) == 256
    assert _decode_publish(seen[1][1]) == ("a/b", 9, b"p" * 300)
    assert not buffer


def test_split_packets_rejects_a_malformed_length() -> None:
    with pytest.raises(packets.ProtocolError):
        packets.split_packets(bytearray(b"\x40\xff\xff\xff\xff\x01"))


@pytest.mark.parametrize("topic", [b"", b"stores/+/shelf/x", b"stores/#", b"a\x00b"])
def test_publish_packet_refuses_topics_a_broker_would_drop_us_for(topic: bytes) -> None:
    with pytest.raises(ValueError, match="topic"):
        packets.publish_packet(topic, 1, b"{}")


def test_connect_packet_carries_credentials() -> None:
    packet = packets.connect_packet("sim-1", keepalive=30, username="u", password="pw")
    assert packet == (b"\x10\x18\x00\x04MQTT\x04\xc2\x00\x1e"
                      b"\x00\x05sim-1\x00\x01u\x00\x02pw")


# ------------------------------------------------------------------------------ real broker
class Recorder:
    """A bare paho subscriber collecting payloads."""

    def __init__(self, broker: MosquittoBroker) -> None:
        self.payloads: list[bytes] = []
        subscribed = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="recorder",
                                  protocol=mqtt.MQTTv5)
        self.client.on_message = lambda _c, _u, msg: self.payloads.append(msg.payload)
        self.client.on_subscribe = lambda *_: subscribed.set()
        self.client.on_connect = lambda c, *_: c.subscribe("stores/#", qos=1)
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()
        assert subscribed.wait(5)

    def wait_for(self, count: int, timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        while len(set(self.payloads)) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        return len(set(self.payloads)) >= count

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def recorder(mosquitto_broker: MosquittoBroker) -> Iterator[Recorder]:
    rec = Recorder(mosquitto_broker)
    yield rec
    rec.close()


def test_batches_arrive_in_order_within_the_window(mosquitto_broker: MosquittoBroker,
                                                  recorder: Recorder) -> None:
    messages = [(f"stores/s1/zone/z{n % 7}", f"m{n}".encode()) for n in range(5000)]
    with MqttPublisher(mosquitto_broker.host, mosquitto_broker.port,
                       max_unacked=100) as publisher:
        for start in range(0, len(messages), 700):
            publisher.publish_batch(messages[start:start + 700])
            assert publisher.unacked <= 100
        assert publisher.flush(10) and publisher.unacked == 0
    assert recorder.wait_for(len(messages))
    assert recorder.payloads == [payload for _, payload in messages]


def test_reconnects_and_resends_what_the_broker_never_acknowledged(
        mosquitto_broker: MosquittoBroker) -> None:
    publisher = MqttPublisher(mosquitto_broker.host, mosquitto_broker.port).connect()
    try:
        publisher.publish(TOPIC, b"before")
        assert publisher.flush(5)
        mosquitto_broker.kill()
        # The first write after the broker died may still be taken by the kernel; the loss
        # shows on the next read, and everything unacknowledged waits for the reconnect.
        publisher.publish_batch([(TOPIC, f"while-away-{n}".encode()) for n in range(50)])
        assert not publisher.flush(0.5)
        assert publisher.unacked == 50
        mosquitto_broker.start()
        recorder = Recorder(mosquitto_broker)
        try:
            assert publisher.flush(10)
            assert recorder.wait_for(50)
        finally:
            recorder.close()
        assert set(recorder.payloads) == {f"while-away-{n}".encode() for n in range(50)}
    finally:
        publisher.close()


def test_publishing_blocks_on_a_full_window_until_cancelled(
        mosquitto_broker: MosquittoBroker) -> None:
    publisher = MqttPublisher(mosquitto_broker.host, mosquitto_broker.port,
                              max_unacked=5).connect()
    try:
        mosquitto_broker.kill()
        cancel = threading.Event()
        timer = threading.Timer(0.5, cancel.set)
        timer.start()
        started = time.monotonic()
        publisher.publish_batch([(TOPIC, b"x")] * 8, cancel=cancel)
        assert 0.4 < time.monotonic() - started < 5
        assert publisher.unacked == 8  # queued past the window once cancelled, not lost
    finally:
        mosquitto_broker.start()
        publisher.close()


class RefusingBroker:
    """A listener that answers every CONNECT with CONNACK `code`: a broker turning us away."""

    def __init__(self, code: int) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self._code = code
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        conn, _ = self.server.accept()
        with conn:
            conn.recv(1024)
            conn.sendall(bytes((packets.CONNACK, 2, 0, self._code)))
            conn.recv(1024)  # until the client hangs up

    def close(self) -> None:
        self.server.close()
        self._thread.join(5)


@pytest.mark.parametrize(("code", "reason"), [(4, "bad user name or password"),
                                              (5, "not authorised"), (0x87, "CONNACK code 135")])
def test_a_refused_connection_says_why(code: int, reason: str) -> None:
    broker = RefusingBroker(code)
    try:
        with pytest.raises(PublisherError, match=f"refused the connection: {reason}"):
            MqttPublisher("127.0.0.1", broker.port, username="u", password="p").connect()
    finally:
        broker.close()


def test_publishing_before_connecting_is_an_error() -> None:
    publisher = MqttPublisher("127.0.0.1", 1)
    with pytest.raises(PublisherError, match="not connected"):
        publisher.publish(TOPIC, b"x")
