"""Sending a store's outbox to AWS IoT Core: batches published at QoS 1 in commit order, at
most `max_in_flight` unacknowledged, the cursor moved only as PUBACKs arrive in order.

What a PUBACK means (MQTT 5 reason codes):
- below 0x80 is delivered — 0x10 "no matching subscribers" included: IoT Core's rules and the
  lake's shared subscription take the message whether or not anyone else listens;
- 0x87 NOT_AUTHORIZED will not get better by retrying (a revoked certificate, a policy that
  no longer covers the topic): the publisher stops, raises the alarm (`state`), and tries
  again only after `NOT_AUTHORIZED_RETRY_S`;
- any other refusal is retried from the cursor after a backoff.

A disconnect does not lose anything: the client keeps unacknowledged QoS 1 publishes and sends
them again when it reconnects (persistent session); if the client gives them up, the publisher
starts again from the cursor. A crash resends from the cursor too: the lake is idempotent by
batch id and event id. The SDK's IoT Core flow control keeps to 100 publishes/s and 512 KB/s
per connection unless `flow_control=False` (for measuring the bare link locally).
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Protocol

from awscrt import mqtt5

from cloud_sync.link.credentials import LinkCredentials
from cloud_sync.link.mqtt import LinkClient, open_link
from cloud_sync.topics import uplink_topic

logger = logging.getLogger(__name__)

# IoT Core's limit on unacknowledged QoS 1 publishes per connection.
MAX_IN_FLIGHT = 100
FIRST_REFUSED_PUBACK = 0x80
# A refused publish other than NOT_AUTHORIZED (quota, server busy) is retried after this.
REFUSED_RETRY_S = 5.0
# A certificate that is not authorized stays so until someone acts: retry rarely.
NOT_AUTHORIZED_RETRY_S = 300.0
# How long the loop waits for an acknowledgement or new events before looking again.
POLL_S = 0.2


class LinkState:
    CONNECTING = "connecting"
    CONNECTED = "connected"
    OFFLINE = "offline"
    NOT_AUTHORIZED = "not_authorized"
    STOPPED = "stopped"


class OutgoingBatchLike(Protocol):
    batch_id: str
    last_seq: int
    events: int
    payload: bytes


class BatchSource(Protocol):
    """The store's outbox, as the publisher sees it."""

    def cursor(self) -> int: ...

    def next_batch(self, after_seq: int) -> OutgoingBatchLike | None: ...

    def acknowledge(self, seq: int) -> None: ...


@dataclass
class PublisherStats:
    batches: int = 0
    events: int = 0
    bytes: int = 0
    refused: int = 0
    resent_from_cursor: int = 0


class BatchPublisher:
    def __init__(self, credentials: LinkCredentials, source: BatchSource, *,
                 max_in_flight: int = MAX_IN_FLIGHT, flow_control: bool = True,
                 on_delivered: Callable[[OutgoingBatchLike], None] | None = None,
                 link: LinkClient | None = None,
                 hold: Callable[[], bool] | None = None) -> None:
        """`link`: a connection already opened for this thing (IoT Core allows one per
        client id, so the store's downlink shares it); else `start` opens one. `hold`: while
        it says True, nothing new is sent (too much is waiting for the lake's word)."""
        self._credentials = credentials
        self._source = source
        self._max_in_flight = max(1, min(max_in_flight, MAX_IN_FLIGHT))
        self._on_delivered = on_delivered
        self._topic = uplink_topic(credentials.thing_name)
        self._flow_control = flow_control
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._link: LinkClient | None = link
        self._owns_link = link is None
        self._hold = hold
        self._rewind = threading.Event()
        self._refused = False  # the cloud said NOT_AUTHORIZED and nothing has gone since
        self.last_error: str | None = None
        self.stats = PublisherStats()
        self._thread = threading.Thread(target=self._run, name="uplink", daemon=True)

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        # A persistent session, client id = thing name (IoT Core's policy requires it): the
        # broker keeps our unacknowledged publishes across a dropped link.
        if self._link is None:
            self._link = open_link(self._credentials, self._credentials.thing_name,
                                   clean=False, flow_control=self._flow_control)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
        if self._link is not None and self._owns_link:
            self._link.stop()
        self._link = None

    def rewind(self) -> None:
        """The source's cursor moved back: drop what is in flight, start from it again."""
        self._rewind.set()
        self._wake.set()

    def wake(self) -> None:
        """New events were committed: look now rather than at the next poll."""
        self._wake.set()

    @property
    def connected(self) -> bool:
        return self._link is not None and self._link.connected.is_set()

    @property
    def state(self) -> str:
        link = self._link
        if link is None:
            return LinkState.STOPPED
        if self._refused:
            return LinkState.NOT_AUTHORIZED
        if link.connected.is_set():
            return LinkState.CONNECTED
        return LinkState.OFFLINE if link.connections else LinkState.CONNECTING

    # -- the loop ------------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._send_until_failure()
            except Exception as exc:  # a database error, a bug: log, wait, start again
                logger.exception("uplink failed; starting again from the cursor")
                self.last_error = repr(exc)
                self._stop.wait(REFUSED_RETRY_S)

    def _send_until_failure(self) -> None:
        link = self._link
        assert link is not None and link.client is not None
        pending: deque[tuple[OutgoingBatchLike, Future]] = deque()
        after = self._source.cursor()
        while not self._stop.is_set():
            if self._rewind.is_set():
                self._rewind.clear()
                return  # _run starts again from the (rewound) cursor
            while (link.connected.is_set() and len(pending) < self._max_in_flight
                   and not (self._hold is not None and self._hold())):
                batch = self._source.next_batch(after)
                if batch is None:
                    break
                packet = mqtt5.PublishPacket(topic=self._topic, payload=batch.payload,
                                             qos=mqtt5.QoS.AT_LEAST_ONCE)
                pending.append((batch, link.client.publish(packet)))
                after = batch.last_seq
            if not pending:
                self._wake.wait(POLL_S)
                self._wake.clear()
                continue
            batch, future = pending[0]
            try:
                completion = future.result(timeout=POLL_S)
            except TimeoutError:
                continue
            except Exception as exc:  # the client gave the publish up (stopped, rejected)
                self._give_up(pending, f"publish failed: {exc!r}", retry_s=POLL_S)
                return
            pending.popleft()
            code = int(completion.puback.reason_code) if completion.puback else 0
            if code < FIRST_REFUSED_PUBACK:
                self._source.acknowledge(batch.last_seq)
                self.stats.batches += 1
                self.stats.events += batch.events
                self.stats.bytes += len(batch.payload)
                self._refused = False
                if self._on_delivered is not None:
                    self._on_delivered(batch)
                continue
            self.stats.refused += 1
            if code == int(mqtt5.PubackReasonCode.NOT_AUTHORIZED):
                self._refused = True
                logger.error("the cloud refused batch %s: NOT_AUTHORIZED on %s; check this"
                             " store's certificate and IoT policy (retrying in %.0f s)",
                             batch.batch_id, self._topic, NOT_AUTHORIZED_RETRY_S)
                self._give_up(pending, "not authorized", retry_s=NOT_AUTHORIZED_RETRY_S)
            else:
                logger.warning("the cloud refused batch %s with reason 0x%02x; retrying",
                               batch.batch_id, code)
                self._give_up(pending, f"PUBACK reason 0x{code:02x}", retry_s=REFUSED_RETRY_S)
            return

    def _give_up(self, pending: deque[tuple[OutgoingBatchLike, Future]], why: str, *,
                 retry_s: float) -> None:
        """Start again from the cursor after a pause: whatever is still in flight may arrive
        too (the lake is idempotent), and nothing after the cursor is lost."""
        self.last_error = why
        self.stats.resent_from_cursor += 1
        pending.clear()
        self._stop.wait(retry_s)
