"""The MQTT side of the local IoT Jobs stand-in: one paho client (MQTT 5, mutual TLS, the
`iot-jobs` broker identity) subscribed to every thing's Jobs topics, answering requests on
`.../accepted` or `.../rejected` with the request's clientToken, and a poll loop that follows
the jobs the cloud creates and cancels through moto and sends `notify` / `notify-next`.

The broker's ACL lets a store touch only its own `$aws/things/{store}/jobs/#`, so the thing
name in a request topic is the certificate's: the service trusts it, as IoT Core does."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterable
from typing import Any, Self

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.subscribeoptions import SubscribeOptions

from cloud_sync.link.credentials import LinkCredentials
from cloud_sync.local.jobs.executions import ExecutionLedger
from cloud_sync.local.jobs.protocol import (
    JOBS_TOPIC_FILTER,
    ErrorCode,
    JobsApiError,
    Operation,
    RequestTopic,
    client_token_of,
    notify_document,
    notify_next_document,
    parse_payload,
    parse_topic,
    rejection,
    response,
)
from cloud_sync.topics import jobs_prefix

logger = logging.getLogger(__name__)

JOBS_CLIENT_ID = "local-iot-jobs"
# How often moto's records are looked at for new, cancelled or timed-out jobs: quick enough
# that a test or a demo never waits on it, cheap at a local fleet's size.
POLL_INTERVAL_S = 0.2
CONNECT_TIMEOUT_S = 10.0
KEEP_ALIVE_S = 30
RECONNECT_MIN_DELAY_S, RECONNECT_MAX_DELAY_S = 1, 5
QOS = 1
Signature = tuple[frozenset[str], str | None]


class JobsServiceError(RuntimeError):
    """The service could not connect to the broker or subscribe in time."""


class JobsDeviceService:
    def __init__(self, credentials: LinkCredentials, ledger: ExecutionLedger, *,
                 poll_interval_s: float = POLL_INTERVAL_S,
                 client_id: str = JOBS_CLIENT_ID) -> None:
        self.credentials = credentials
        self.ledger = ledger
        self.poll_interval_s = poll_interval_s
        self.subscribed = threading.Event()
        self._stopping = threading.Event()
        self._published: dict[str, Signature] = {}  # what each thing was last notified of
        self._poller = threading.Thread(target=self._poll_loop, name="jobs-poll", daemon=True)
        self._client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                                   protocol=paho.MQTTv5)
        self._client.tls_set(ca_certs=str(credentials.ca), certfile=str(credentials.certificate),
                             keyfile=str(credentials.private_key))
        self._client.reconnect_delay_set(RECONNECT_MIN_DELAY_S, RECONNECT_MAX_DELAY_S)
        self._client.on_connect = self._on_connect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_message = self._on_message

    # -------------------------------------------------------------------------- lifecycle
    def start(self, timeout: float = CONNECT_TIMEOUT_S) -> Self:
        self._client.connect_async(self.credentials.host, self.credentials.port, KEEP_ALIVE_S)
        self._client.loop_start()
        if not self.subscribed.wait(timeout):
            self.stop()
            raise JobsServiceError(f"no subscription to {JOBS_TOPIC_FILTER} at "
                                   f"{self.credentials.endpoint} within {timeout}s")
        self._poller.start()
        logger.info("IoT Jobs device API on %s (%s)", self.credentials.endpoint,
                    JOBS_TOPIC_FILTER)
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._client.disconnect()
        self._client.loop_stop()

    # ------------------------------------------------------------- paho's callbacks
    # paho calls these on its network thread: they must never raise (it would stop the loop).
    def _on_connect(self, client: paho.Client, _userdata: Any, _flags: Any, reason: Any,
                    _properties: Any) -> None:
        if reason.is_failure:
            logger.warning("jobs service: connection refused: %s", reason)
            return
        # noLocal: our own responses and notifications under the same filter stay away.
        client.subscribe(JOBS_TOPIC_FILTER, options=SubscribeOptions(qos=QOS, noLocal=True))

    def _on_subscribe(self, _client: paho.Client, _userdata: Any, _mid: int, reasons: Any,
                      _properties: Any) -> None:
        if any(r.is_failure for r in reasons):
            logger.error("jobs service: subscription refused: %s", reasons)
        else:
            self.subscribed.set()

    def _on_message(self, _client: paho.Client, _userdata: Any,
                    message: paho.MQTTMessage) -> None:
        try:
            self.handle(message.topic, bytes(message.payload))
        except Exception:
            logger.exception("jobs service: a request on %s failed", message.topic)

    # ----------------------------------------------------------------------- requests
    def handle(self, topic: str, payload: bytes) -> None:
        """Answer one request (or reject it), then notify what it changed."""
        token: str | None = None
        try:
            request_topic = parse_topic(topic)
            if request_topic is None:
                return  # a response or notification: ours, or a device's mistake
            request = parse_payload(payload)
            token = client_token_of(request)
            with self.ledger.lock:
                self._publish(request_topic.accepted,
                              response(token, **self._answer(request_topic, request)))
                self._notify_changes([request_topic.thing])
        except JobsApiError as error:
            self._publish(topic + "/rejected", rejection(error, token))
        except Exception as exc:
            logger.exception("jobs service: %s failed", topic)
            self._publish(topic + "/rejected",
                          rejection(JobsApiError(ErrorCode.INTERNAL_ERROR, str(exc)), token))

    def _answer(self, topic: RequestTopic, request: dict[str, Any]) -> dict[str, Any]:
        thing, ledger = topic.thing, self.ledger
        if topic.operation is Operation.GET_PENDING:
            in_progress, queued = ledger.pending_summaries(thing)
            return {"inProgressJobs": in_progress, "queuedJobs": queued}
        if topic.operation is Operation.START_NEXT:
            return {"execution": ledger.start_next(thing, request)}
        assert topic.job_id is not None  # DESCRIBE and UPDATE name their job
        if topic.operation is Operation.DESCRIBE:
            return {"execution": ledger.describe(thing, topic.job_id, request)}
        return ledger.update(thing, topic.job_id, request)

    # ------------------------------------------------------------------ notifications
    def _poll_loop(self) -> None:
        while not self._stopping.wait(self.poll_interval_s):
            try:
                with self.ledger.lock:
                    self.ledger.sweep()
                    self._notify_changes(self.ledger.things())
            except Exception:
                logger.exception("jobs service: the poll failed")

    def _notify_changes(self, things: Iterable[str]) -> None:
        """`notify` when a thing's pending executions changed, `notify-next` when its next
        one did (IoT Jobs sends neither for a change of details)."""
        for thing in things:
            try:
                self._notify_thing(thing)
            except Exception:  # one thing's failure must not silence the others
                logger.exception("jobs service: notifying %s failed", thing)

    def _notify_thing(self, thing: str) -> None:
        pending, next_id = signature = self.ledger.pending_signature(thing)
        before_pending, before_next = self._published.get(thing, (frozenset(), None))
        if signature == (before_pending, before_next):
            return
        self._published[thing] = signature
        prefix = jobs_prefix(thing)
        if pending != before_pending:
            self._publish(prefix + "notify",
                          notify_document(*self.ledger.pending_summaries(thing)))
        if next_id != before_next:
            self._publish(prefix + "notify-next",
                          notify_next_document(self.ledger.next_execution(thing)))

    def _publish(self, topic: str, document: dict[str, Any]) -> None:
        self._client.publish(topic, json.dumps(document, separators=(",", ":")), qos=QOS)
