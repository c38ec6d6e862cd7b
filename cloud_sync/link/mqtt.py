"""One MQTT 5 connection over mutual TLS with the AWS IoT Device SDK (`awscrt`), the same
against AWS IoT Core and the local Mosquitto stand-in. Used by the store's uplink, the lake
workers and the tests: `connect_mqtt5` returns only once the broker has accepted the
connection, and raises a `LinkConnectError` naming the reason otherwise.

After that first success, awscrt reconnects by itself (with backoff and jitter). A persistent
session (`clean=False`) is asked for on *every* connection, the first one included
(REJOIN_ALWAYS rather than REJOIN_POST_SUCCESS): a restarted store agent or lake worker must
find the QoS 1 messages queued for it while it was down, and Mosquitto 2.0 writes to disk only
sessions that began without clean start, so a REJOIN_POST_SUCCESS session is lost when the
local broker restarts. awscrt's caveat for REJOIN_ALWAYS (its own unacknowledged publishes of
an earlier process are not resent) is harmless here: the outbox resends them.

On every reconnect the client subscribes again to what it had subscribed to: awscrt does not,
and a silently unsubscribed lake worker would lose every batch after that. A session the broker
kept makes this a no-op (a SUBSCRIBE replaces an equal subscription), but the session may be
gone (expired, broker state lost) or incomplete: Mosquitto 2.0.11 restores a persistent
session after a restart *without* its shared (`$share/...`) subscriptions.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from types import TracebackType
from typing import Any, Protocol, Self, TypeVar

from awscrt import mqtt5
from awsiot import mqtt5_client_builder

from cloud_sync.link.credentials import LinkCredentials

logger = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 10.0
ACK_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 5.0
# How long the broker keeps a persistent session (and the QoS 1 messages queued for it) while
# the client is away: a week covers a store closed over a long weekend with margin. IoT Core
# caps it at 7 days by default too.
SESSION_EXPIRY_S = 7 * 24 * 3600
KEEP_ALIVE_S = 60
# Reconnect backoff: quick at first (a broker restart), capped so a fleet that lost the cloud
# does not hammer it when it returns.
MIN_RECONNECT_DELAY_MS = 250
MAX_RECONNECT_DELAY_MS = 30_000

T = TypeVar("T")
# IoT Core takes at most 8 filters in one SUBSCRIBE (AWS_IOT_CORE_DEFAULTS checks it).
MAX_FILTERS_PER_SUBSCRIBE = 8
# MQTT 5 reason codes from 0x80 up are failures; below, successes (e.g. 0x10: no subscribers).
REASON_FAILURE = 0x80
OnPublish = Callable[[mqtt5.PublishPacket], None]
# For a consumer that acknowledges by hand (the lake workers): the whole received data,
# whose `acquire_publish_acknowledgement_control` must be called inside the callback.
OnPublishData = Callable[[mqtt5.PublishReceivedData], None]


class LinkConnectError(RuntimeError):
    """The broker refused or never answered the connection; `reason` says why."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class LinkOperationError(RuntimeError):
    """A publish or subscribe did not complete (timeout, refused by the client or broker)."""


def _describe_failure(data: mqtt5.LifecycleConnectFailureData) -> str:
    connack = data.connack_packet
    if connack is not None and connack.reason_code is not None:
        code = mqtt5.ConnectReasonCode(connack.reason_code)
        reason = f"CONNACK {code.name} (0x{int(code):02X})"
        if connack.reason_string:
            reason += f": {connack.reason_string}"
        return reason
    exc = getattr(data, "exception", None)
    return f"{exc}" if exc else f"error code {getattr(data, 'error_code', '?')}"


class LinkClient:
    """An awscrt MQTT 5 client plus the state of its connection (see `connect_mqtt5`)."""

    def __init__(self, credentials: LinkCredentials, client_id: str,
                 on_publish: OnPublish | None, on_publish_data: OnPublishData | None = None
                 ) -> None:
        self.credentials = credentials
        self.client_id = client_id
        self._on_publish = on_publish
        self._on_publish_data = on_publish_data
        self.connected = threading.Event()
        self.stopped = threading.Event()
        self._first_outcome = threading.Event()
        self.failure: str | None = None
        self.negotiated: mqtt5.NegotiatedSettings | None = None
        self.connections = 0  # successful connections so far (1 + reconnects)
        self.session_present: bool | None = None  # as the last CONNACK said
        self._subscriptions: dict[str, int] = {}  # filter -> QoS, granted by the broker
        # Filters to subscribe on every connection, the first included (subscribe_on_connect).
        self._standing: dict[str, int] = {}
        self.resubscriptions = 0  # SUBACKs of successful resubscriptions after reconnects
        self.client: mqtt5.Client | None = None

    # awscrt calls these from its own event-loop thread: they must never raise.
    def _publish_received(self, data: mqtt5.PublishReceivedData) -> None:
        packet = data.publish_packet
        try:
            if self._on_publish_data is not None:
                self._on_publish_data(data)
            elif self._on_publish is not None:
                self._on_publish(packet)
        except Exception:
            logger.exception("on_publish failed for a message on %s", packet.topic)

    def _connection_success(self, data: mqtt5.LifecycleConnectSuccessData) -> None:
        self.negotiated = data.negotiated_settings
        self.connections += 1
        self.failure = None
        self.session_present = bool(data.connack_packet and data.connack_packet.session_present)
        logger.info("%s connected to %s (session present: %s)", self.client_id,
                    self.credentials.endpoint, self.session_present)
        if self._standing or (self.connections > 1 and self._subscriptions):
            self._resubscribe()
        self.connected.set()
        self._first_outcome.set()

    def _resubscribe(self) -> None:
        """Subscribe again after a reconnect (never blocks: we run on awscrt's event loop,
        which must go on to read the SUBACK)."""
        items = list({**self._subscriptions, **self._standing}.items())
        logger.info("%s: subscribing to %s", self.client_id, ", ".join(f for f, _ in items))
        for start in range(0, len(items), MAX_FILTERS_PER_SUBSCRIBE):
            packet = mqtt5.SubscribePacket(subscriptions=[
                mqtt5.Subscription(topic_filter=f, qos=mqtt5.QoS(q))
                for f, q in items[start:start + MAX_FILTERS_PER_SUBSCRIBE]])
            try:
                future = self._require().subscribe(packet)
            except Exception:
                logger.exception("%s: subscribing again failed", self.client_id)
                return
            future.add_done_callback(self._resubscribed)

    def _resubscribed(self, future: Future[mqtt5.SubackPacket]) -> None:
        try:
            codes = future.result().reason_codes or []
        except Exception as exc:
            logger.error("%s: subscribing again failed: %s", self.client_id, exc)
            return
        refused = [c for c in codes if int(c) >= REASON_FAILURE]
        if refused:
            logger.error("%s: the broker refused the resubscription: %s", self.client_id,
                         refused)
        else:
            self.resubscriptions += 1

    def _connection_failure(self, data: mqtt5.LifecycleConnectFailureData) -> None:
        self.failure = _describe_failure(data)
        self._first_outcome.set()
        logger.warning("%s could not connect to %s: %s", self.client_id,
                       self.credentials.endpoint, self.failure)

    def _disconnection(self, data: mqtt5.LifecycleDisconnectData) -> None:
        self.connected.clear()
        packet = data.disconnect_packet
        reason = (mqtt5.DisconnectReasonCode(packet.reason_code).name
                  if packet is not None and packet.reason_code is not None
                  else getattr(data, "exception", None))
        logger.info("%s disconnected: %s", self.client_id, reason)

    def _stopped(self, _data: mqtt5.LifecycleStoppedData) -> None:
        self.connected.clear()
        self.stopped.set()

    # ---------------------------------------------------------------------------- operations
    def publish(self, topic: str, payload: bytes, *, qos: int = 1,
                timeout: float = ACK_TIMEOUT_S) -> mqtt5.PubackPacket | None:
        """Publish and wait for the PUBACK (QoS 1) or the write (QoS 0).

        A PUBACK with a failure reason (e.g. NOT_AUTHORIZED) is *returned*, not raised: it is
        the broker's answer. A publish the client or the connection could not carry raises."""
        packet = mqtt5.PublishPacket(topic=topic, payload=payload, qos=mqtt5.QoS(qos))
        result = self._wait(self._require().publish(packet), timeout, f"publish to {topic}")
        return result.puback

    def subscribe_on_connect(self, topic_filters: Sequence[str], *, qos: int = 1) -> None:
        """Subscribe whenever connected, now or later: for a client started offline (a
        store's link) that must not wait for the cloud to start."""
        self._standing.update({topic_filter: qos for topic_filter in topic_filters})
        if self.connected.is_set():
            self._resubscribe()

    def subscribe(self, topic_filters: Sequence[str], *, qos: int = 1,
                  timeout: float = ACK_TIMEOUT_S) -> mqtt5.SubackPacket:
        """Subscribe and return the SUBACK (one reason code per filter; check them)."""
        packet = mqtt5.SubscribePacket(subscriptions=[
            mqtt5.Subscription(topic_filter=f, qos=mqtt5.QoS(qos)) for f in topic_filters])
        suback = self._wait(self._require().subscribe(packet), timeout,
                            f"subscribe to {', '.join(topic_filters)}")
        for topic_filter, code in zip(topic_filters, suback.reason_codes or [], strict=False):
            if int(code) < REASON_FAILURE:
                self._subscriptions[topic_filter] = min(int(code), qos)
        return suback

    def stop(self, timeout: float = STOP_TIMEOUT_S, *, end_session: bool = False) -> None:
        """Disconnect and wait until stopped. The broker keeps a persistent session unless
        `end_session` (session expiry 0 on the DISCONNECT): a consumer leaving for good
        must not leave a session that goes on taking its share of messages."""
        if self.client is None or self.stopped.is_set():
            return
        self.client.stop(mqtt5.DisconnectPacket(session_expiry_interval_sec=0)
                         if end_session else None)
        if not self.stopped.wait(timeout):
            logger.warning("%s did not stop within %.0fs", self.client_id, timeout)

    def _require(self) -> mqtt5.Client:
        if self.client is None or self.stopped.is_set():
            raise LinkOperationError(f"{self.client_id}: the client is stopped")
        return self.client

    @staticmethod
    def _wait(future: Future[T], timeout: float, what: str) -> T:
        try:
            return future.result(timeout)
        except FutureTimeout:
            raise LinkOperationError(f"{what}: no acknowledgement within {timeout}s") from None
        except Exception as exc:  # awscrt.exceptions.AwsCrtError and friends
            raise LinkOperationError(f"{what} failed: {exc}") from exc

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def connect_mqtt5(credentials: LinkCredentials, client_id: str,
                  on_publish: OnPublish | None = None, clean: bool = True, *,
                  timeout: float = CONNECT_TIMEOUT_S, **options: Any) -> LinkClient:
    """Connect with the credentials' certificate; return once the broker accepted us
    (`open_link`'s options apply)."""
    link = open_link(credentials, client_id, on_publish, clean, **options)
    link._first_outcome.wait(timeout)
    if link.connected.is_set():
        return link
    reason = link.failure or f"no answer within {timeout}s"
    link.stop()
    raise LinkConnectError(
        f"{client_id} could not connect to {credentials.endpoint} as "
        f"{credentials.thing_name}: {reason}", reason)


def open_link(credentials: LinkCredentials, client_id: str,
              on_publish: OnPublish | None = None, clean: bool = True, *,
              session_behavior: mqtt5.ClientSessionBehaviorType | None = None,
              session_expiry_s: int = SESSION_EXPIRY_S, flow_control: bool = True,
              receive_maximum: int | None = None,
              on_publish_data: OnPublishData | None = None) -> LinkClient:
    """Start a client that connects, and reconnects, by itself; return at once (a store's
    uplink must start whether or not the cloud is reachable: `link.connected` says).

    `clean=False` asks for a persistent session (REJOIN_ALWAYS with a session expiry, see the
    module's docstring); `session_behavior` overrides that choice (e.g. REJOIN_POST_SUCCESS).
    `on_publish` gets each received PUBLISH packet on awscrt's thread; what it raises is
    logged, never propagated. `flow_control=False` lifts the SDK's IoT Core limits (100
    publishes/s, 512 KB/s), only to measure the bare link locally. `receive_maximum` bounds
    the QoS 1 messages the broker sends us before we acknowledge."""
    link = LinkClient(credentials, client_id, on_publish, on_publish_data)
    if session_behavior is None:
        session_behavior = (mqtt5.ClientSessionBehaviorType.CLEAN if clean
                            else mqtt5.ClientSessionBehaviorType.REJOIN_ALWAYS)
    persistent = session_behavior != mqtt5.ClientSessionBehaviorType.CLEAN
    client = mqtt5_client_builder.mtls_from_path(
        endpoint=credentials.host, port=credentials.port,
        cert_filepath=str(credentials.certificate), pri_key_filepath=str(credentials.private_key),
        ca_filepath=str(credentials.ca), client_id=client_id,
        session_behavior=session_behavior,
        session_expiry_interval_sec=session_expiry_s if persistent else 0,
        keep_alive_interval_sec=KEEP_ALIVE_S,
        min_reconnect_delay_ms=MIN_RECONNECT_DELAY_MS,
        max_reconnect_delay_ms=MAX_RECONNECT_DELAY_MS,
        extended_validation_and_flow_control_options=(
            mqtt5.ExtendedValidationAndFlowControlOptions.AWS_IOT_CORE_DEFAULTS if flow_control
            else mqtt5.ExtendedValidationAndFlowControlOptions.NONE),
        receive_maximum=receive_maximum,
        enable_metrics_collection=False,
        on_publish_received=link._publish_received,
        on_lifecycle_connection_success=link._connection_success,
        on_lifecycle_connection_failure=link._connection_failure,
        on_lifecycle_disconnection=link._disconnection,
        on_lifecycle_stopped=link._stopped)
    link.client = client
    client.start()
    return link


class Publishes(Protocol):
    def publish(self, topic: str, payload: bytes) -> mqtt5.PubackPacket | None: ...


def publish_all(link: Publishes, topic: str, payloads: Sequence[bytes], what: str) -> None:
    """Publish each payload at QoS 1 in order; the first one the broker refuses raises
    (`what` names the messages in the error: "master data for store-1")."""
    for payload in payloads:
        puback = link.publish(topic, payload)
        code = int(puback.reason_code) if puback is not None else 0
        if code >= 0x80:
            raise RuntimeError(f"the broker refused {what}:"
                               f" {mqtt5.PubackReasonCode(code).name}")
