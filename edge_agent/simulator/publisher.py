"""A QoS 1 publisher on paho-mqtt 2.x with flow control: at most a window of unacknowledged
messages, so "as fast as the broker takes it" means exactly that, with bounded memory.

Connects with MQTT 5 and falls back to MQTT 3.1.1 when the broker refuses 5 (the embedded
amqtt broker speaks 3.1.1 only).
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections import Counter
from types import TracebackType
from typing import Any, Self

import paho.mqtt.client as mqtt
from paho.mqtt.reasoncodes import ReasonCode

logger = logging.getLogger(__name__)

QOS = 1
# Unacknowledged QoS 1 messages allowed in flight: deep enough to keep the pipe full at
# tens of thousands of messages/s on localhost, shallow enough to bound memory.
MAX_UNACKED = 2000
CONNECT_TIMEOUT_S = 10.0
KEEPALIVE_S = 30
# Waits for acknowledgements wake up this often to notice a cancellation.
WAIT_SLICE_S = 0.2
# paho's reconnect backoff when the broker goes away mid-run.
RECONNECT_MIN_S, RECONNECT_MAX_S = 0.5, 10


class PublisherError(RuntimeError):
    """The broker could not be reached or refused the connection."""


class MqttPublisher:
    def __init__(self, host: str, port: int, *, client_id: str | None = None,
                 max_unacked: int = MAX_UNACKED, username: str | None = None,
                 password: str | None = None, tls: bool = False) -> None:
        self.host, self.port, self.tls = host, port, tls
        self.client_id = client_id or f"simulator-{uuid.uuid4().hex[:12]}"
        self.max_unacked = max_unacked
        self._credentials = (username, password)
        self.protocol = mqtt.MQTTv5
        self.published: Counter[str] = Counter()
        self._acked = 0
        self._sent = 0
        self._cond = threading.Condition()
        self._connected = threading.Event()
        self._answered = threading.Event()  # a CONNACK came, accepting or refusing
        self._connack: ReasonCode | None = None
        self._client: mqtt.Client | None = None

    # ------------------------------------------------------------------ lifecycle
    def connect(self, timeout: float = CONNECT_TIMEOUT_S) -> Self:
        for protocol in (mqtt.MQTTv5, mqtt.MQTTv311):
            client = self._make_client(protocol)
            self._connected.clear()
            self._answered.clear()
            self._connack = None
            try:
                client.connect(self.host, self.port, keepalive=KEEPALIVE_S)
            except OSError as exc:
                raise PublisherError(f"cannot reach MQTT broker {self.host}:{self.port}: {exc}") \
                    from exc
            client.loop_start()
            self._answered.wait(timeout)
            if self._connected.is_set():
                self._client, self.protocol = client, protocol
                logger.info("publishing to %s:%d as %s (MQTT %s)", self.host, self.port,
                            self.client_id, "5" if protocol == mqtt.MQTTv5 else "3.1.1")
                return self
            client.loop_stop()
            client.disconnect()
            reason = self._connack
            if reason is not None and protocol == mqtt.MQTTv5 and _unsupported_protocol(reason):
                logger.info("broker refused MQTT 5, retrying with MQTT 3.1.1")
                continue
            raise PublisherError(f"MQTT broker {self.host}:{self.port} refused the connection: "
                                 f"{reason or 'no CONNACK'}")
        raise PublisherError("unreachable")  # pragma: no cover - loop always returns or raises

    def _make_client(self, protocol: int) -> mqtt.Client:
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=self.client_id,
                             protocol=protocol)
        username, password = self._credentials
        if username:
            client.username_pw_set(username, password)
        if self.tls:
            client.tls_set()  # the system's CA store; mqtts:// brokers need a trusted cert
        client.max_inflight_messages_set(self.max_unacked)
        client.reconnect_delay_set(RECONNECT_MIN_S, RECONNECT_MAX_S)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        return client

    def close(self, flush_timeout: float = 10.0) -> None:
        client, self._client = self._client, None
        if client is None:
            return
        self._wait_unacked(0, flush_timeout)
        client.disconnect()
        client.loop_stop()

    def __enter__(self) -> Self:
        return self.connect()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    # ------------------------------------------------------------------ callbacks (never raise)
    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any,
                    reason_code: ReasonCode, properties: Any) -> None:
        self._connack = reason_code
        if not reason_code.is_failure:
            self._connected.set()
        self._answered.set()

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any,
                       reason_code: ReasonCode, properties: Any) -> None:
        if self._client is not None:
            logger.warning("disconnected from broker (%s); paho reconnects", reason_code)

    def _on_publish(self, client: mqtt.Client, userdata: Any, mid: int,
                    reason_code: ReasonCode, properties: Any) -> None:
        with self._cond:
            self._acked += 1
            self._cond.notify_all()

    # ------------------------------------------------------------------ publishing
    @property
    def unacked(self) -> int:
        return self._sent - self._acked

    def publish(self, topic: str, payload: bytes, kind: str = "",
                cancel: threading.Event | None = None) -> None:
        """Publish at QoS 1; blocks while `max_unacked` messages await the broker's PUBACK
        (a broker that went away), unless `cancel` is set meanwhile."""
        client = self._client
        if client is None:
            raise PublisherError("publisher is not connected")
        while (self._sent - self._acked >= self.max_unacked
               and not self._wait_unacked(self.max_unacked - 1, WAIT_SLICE_S)):
            if cancel is not None and cancel.is_set():
                break  # paho still takes the message into its own queue
        with self._cond:  # counted first: the PUBACK can arrive before publish() returns
            self._sent += 1
        info = client.publish(topic, payload, qos=QOS)
        if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
            # NO_CONN: paho keeps the message and sends it after reconnecting.
            with self._cond:
                self._sent -= 1
            raise PublisherError(f"publish to {topic} failed: {mqtt.error_string(info.rc)}")
        self.published[kind] += 1

    def flush(self, timeout: float | None = 10.0) -> bool:
        """Wait until every published message is acknowledged; False on timeout."""
        return self._wait_unacked(0, timeout)

    def _wait_unacked(self, at_most: int, timeout: float | None) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: self._sent - self._acked <= at_most, timeout)


def _unsupported_protocol(reason: ReasonCode) -> bool:
    # MQTT 5 "Unsupported Protocol Version" (132) or 3.1.1 CONNACK code 1, as paho maps it.
    return reason.value in (1, 132) or "protocol version" in str(reason).lower()
