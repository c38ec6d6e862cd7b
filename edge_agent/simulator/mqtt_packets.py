"""The few MQTT 3.1.1 packets a QoS 1 publisher needs, encoded and decoded as bytes.

Only what the simulator's publisher sends (CONNECT, PUBLISH, PINGREQ, DISCONNECT) and what a
broker sends back to a client that subscribes to nothing (CONNACK, PUBACK, PINGRESP). Written
out by hand because paho's per-message Python overhead (~80 µs for a publish and its PUBACK)
was most of the simulator's CPU; here a batch of messages is one `sendall` and a burst of
PUBACKs is parsed out of one `recv`.
"""

from __future__ import annotations

import struct

PROTOCOL_LEVEL_311 = 4  # MQTT 3.1.1: every broker in the store speaks it (amqtt only that)
CONNECT, CONNACK, PUBLISH, PUBACK = 0x10, 0x20, 0x30, 0x40
PINGREQ, PINGRESP, DISCONNECT = 0xC0, 0xD0, 0xE0
QOS1_FLAG, DUP_FLAG = 0x02, 0x08
CLEAN_SESSION, PASSWORD_FLAG, USERNAME_FLAG = 0x02, 0x40, 0x80
# The variable-length "remaining length" field holds at most 4 bytes (256 MiB).
MAX_REMAINING_LENGTH = 268_435_455
MAX_PACKET_ID = 0xFFFF

PINGREQ_PACKET = bytes((PINGREQ, 0))
DISCONNECT_PACKET = bytes((DISCONNECT, 0))

# CONNACK return codes (3.1.1 §3.2.2.3).
CONNACK_REASONS = {
    1: "unacceptable protocol version",
    2: "client identifier rejected",
    3: "server unavailable",
    4: "bad user name or password",
    5: "not authorised",
}

_U16 = struct.Struct("!H")
_PUBLISH_QOS1 = bytes((PUBLISH | QOS1_FLAG,))


class ProtocolError(ValueError):
    """The broker sent bytes that are not an MQTT packet we expect."""


def _remaining_length(n: int) -> bytes:
    if 0 <= n < 0x4000:  # one or two bytes: every event the simulator sends
        return bytes((n,)) if n < 0x80 else bytes((n & 0x7F | 0x80, n >> 7))
    if not 0 <= n <= MAX_REMAINING_LENGTH:
        raise ValueError(f"MQTT packet of {n} bytes is too large")
    out = bytearray()
    while True:
        n, digit = divmod(n, 128)
        out.append(digit | 0x80 if n else digit)
        if not n:
            return bytes(out)


def _str16(value: bytes) -> bytes:
    if len(value) > MAX_PACKET_ID:
        raise ValueError("MQTT string longer than 65535 bytes")
    return _U16.pack(len(value)) + value


def connect_packet(client_id: str, *, keepalive: int, username: str | None = None,
                   password: str | None = None) -> bytes:
    flags = CLEAN_SESSION
    payload = _str16(client_id.encode())
    if username:
        flags |= USERNAME_FLAG
        payload += _str16(username.encode())
        if password is not None:
            flags |= PASSWORD_FLAG
            payload += _str16(password.encode())
    body = _str16(b"MQTT") + bytes((PROTOCOL_LEVEL_311, flags)) + _U16.pack(keepalive) + payload
    return bytes((CONNECT,)) + _remaining_length(len(body)) + body


def publish_packet(topic: bytes, packet_id: int, payload: bytes) -> bytes:
    """A QoS 1 PUBLISH; `topic` already UTF-8 encoded."""
    if not topic or b"+" in topic or b"#" in topic or b"\0" in topic or len(topic) > MAX_PACKET_ID:
        # A broker drops the connection over such a topic; resending it after every
        # reconnect would never end.
        raise ValueError(f"not a topic to publish on: {topic!r}")
    rest = len(topic) + 4 + len(payload)  # topic length, topic, packet id, payload
    return b"".join((_PUBLISH_QOS1, _remaining_length(rest), _U16.pack(len(topic)), topic,
                     _U16.pack(packet_id), payload))


def as_duplicate(packet: bytes) -> bytes:
    """The same PUBLISH with the DUP flag set: what is resent after a reconnect."""
    return bytes((packet[0] | DUP_FLAG,)) + packet[1:]


def split_packets(buffer: bytearray) -> list[tuple[int, bytes]]:
    """Take every complete packet off the front of `buffer` as (type, body); a partial one
    stays for the next read."""
    packets: list[tuple[int, bytes]] = []
    pos = 0
    end = len(buffer)
    while end - pos >= 2:
        if buffer[pos + 1] < 0x80:  # a one-byte length: PUBACKs and every other reply
            start, length = pos + 2, buffer[pos + 1]
        elif (header := _body_span(buffer, pos)) is not None:
            start, length = header
        else:
            break
        if end - start < length:
            break
        packets.append((buffer[pos] & 0xF0, bytes(buffer[start:start + length])))
        pos = start + length
    del buffer[:pos]
    return packets


def _body_span(buffer: bytearray, pos: int) -> tuple[int, int] | None:
    """(where the body starts, its length) of the packet at `pos`; None if the fixed header
    is not all there yet."""
    length = 0
    for digit, i in enumerate(range(pos + 1, min(len(buffer), pos + 5))):
        byte = buffer[i]
        length |= (byte & 0x7F) << (7 * digit)
        if not byte & 0x80:
            return i + 1, length
    if len(buffer) - pos > 4:
        raise ProtocolError("malformed remaining length")
    return None


def packet_id_of(body: bytes) -> int:
    if len(body) < 2:
        raise ProtocolError("PUBACK without a packet id")
    return int(_U16.unpack_from(body)[0])


def connack_code(body: bytes) -> int:
    if len(body) != 2:
        raise ProtocolError("CONNACK of the wrong size")
    return body[1]
