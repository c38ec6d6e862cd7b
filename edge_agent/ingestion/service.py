"""The ingestion service: a paho-mqtt 2.x subscriber with manual acknowledgements, and a pump
thread that hands batches to the writer process (writer_process.py) and acks what it committed.

Delivery guarantee: a QoS 1 message is acknowledged (PUBACK) only after the transaction
holding it has committed. If the agent dies between receipt and commit, the broker still
holds the message in our persistent session and redelivers it; duplicates are dropped by
`event_id`. Acks are sent in receipt order, as MQTT requires.

Batching is a group commit: the pump hands the writer a batch when it is idle and the batch
is due (inbox.py); what arrives during a commit goes with the next one, so the commit's fixed
cost (WAL frames, fsync) is paid once per batch, not once per handful of messages.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from edge_agent.ingestion.inbox import Inbox
from edge_agent.ingestion.writer_process import STORAGE_ERROR_SEQ, WriterDied, WriterProcess
from edge_agent.metrics import AgentMetrics
from edge_agent.settings import Settings
from edge_agent.storage.event_writer import BatchResult

logger = logging.getLogger(__name__)

# Bounded so that QoS 0 floods (not flow-controlled by Receive Maximum) block the network
# thread, which pushes back on the broker through TCP, instead of growing memory.
QUEUE_CAPACITY = 100_000
# Under a backlog a second, full batch waits in the writer's pipe while it commits the first.
# Below that rate a second batch would be a small one: messages arriving during a commit
# wait for the next, so each commit (and fsync) takes all of them.
MAX_BATCHES_IN_FLIGHT = 2
# How often the pump checks that a writer busy with two batches is still alive (its death
# normally shows at once as EOF on the pipe).
WRITER_CHECK_S = 1.0
# While the writer is busy with one batch the pump looks for a backlog every batching window,
# but not more often than this (batch_max_wait_ms may be 0).
MIN_BACKLOG_CHECK_S = 0.01
# Pause before restarting a writer process that died, so a crash loop does not spin.
WRITER_RESTART_DELAY_S = 0.5
# A writer that dies this many times in a row without committing (a corrupt database, a
# broken install) is not helped by another restart.
WRITER_DEATHS_ALLOWED = 10
# CONNACK reason codes that mean our credentials: 3.1.1's 4 and 5, MQTT 5's 0x86 (bad user
# name or password) and 0x87 (not authorized). paho maps 3.1.1 codes onto the 5 ones.
REFUSED_CREDENTIALS = frozenset({4, 5, 0x86, 0x87})
CREDENTIALS_HINT = (" (check mqtt_username and mqtt_password, EDGE_MQTT_USERNAME and"
                    " EDGE_MQTT_PASSWORD, against the store broker's password file)")


class _Outcome(threading.Event):
    """Set once a locally submitted message's batch committed; `stored` says whether it was
    stored (or already was) rather than dead-lettered."""

    stored = False


class _Received(NamedTuple):  # a tuple: built for every message on the network thread
    topic: str
    payload: bytes
    mid: int
    qos: int
    generation: int  # which connection it arrived on: a packet id is only valid there
    committed: _Outcome | None = None  # set once committed, for local submissions


# A batch at the writer: its number, its messages, when it was sent (monotonic).
_InFlight = tuple[int, list[_Received], float]


@dataclass
class IngestStats:
    """Running totals since start (the durable truth is in the database)."""

    stored: Counter[str] = field(default_factory=Counter)
    duplicates: int = 0
    dead_letters: Counter[str] = field(default_factory=Counter)
    batches: int = 0

    @property
    def stored_total(self) -> int:
        return sum(self.stored.values())

    @property
    def dead_letters_total(self) -> int:
        return sum(self.dead_letters.values())


class IngestionService:
    def __init__(self, settings: Settings, metrics: AgentMetrics | None = None) -> None:
        if settings.broker_address is None:
            raise ValueError("broker: no MQTT broker configured")
        self._settings = settings
        self._broker = settings.broker_address
        self._mqtt5 = settings.mqtt_protocol == "5"
        self._metrics = metrics or AgentMetrics()
        self._inbox: Inbox[_Received] = Inbox(QUEUE_CAPACITY)
        self._generation = 0
        self._connected = threading.Event()
        self._stopping = threading.Event()
        self._stats = IngestStats()
        self._stats_lock = threading.Lock()
        self._pump_thread: threading.Thread | None = None
        self._seq = 0  # numbers the batches sent to the writer (pump thread only)
        self._writer = WriterProcess(settings)
        # Written by the pump thread, read by probes: when the oldest unanswered batch went
        # to the writer (None: none waits), and why the pump stopped, if it did.
        self._oldest_sent_at: float | None = None
        self._failure: BaseException | None = None
        self._storage_error: str | None = None  # the database refuses writes: why
        self._writer_deaths = 0  # in a row, without a batch committed in between
        self._refusal: str | None = None  # the broker refused our CONNECT: its reason
        self._client = self._make_client()

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Connect (in the background, retrying) and start committing."""
        self._stopping.clear()
        self._inbox.resume()
        self._writer.start()
        self._pump_thread = threading.Thread(target=self._pump_loop, name="ingest-pump",
                                             daemon=True)
        self._pump_thread.start()
        if self._mqtt5:
            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = self._settings.mqtt_session_expiry_s
            props.ReceiveMaximum = self._settings.mqtt_receive_maximum
            self._client.connect_async(self._broker.host, self._broker.port,
                                       keepalive=self._settings.mqtt_keepalive_s,
                                       clean_start=False, properties=props)
        else:  # 3.1.1: the persistent session comes from clean_session=False on the client
            self._client.connect_async(self._broker.host, self._broker.port,
                                       keepalive=self._settings.mqtt_keepalive_s)
        self._client.loop_start()

    def stop(self, timeout: float = 10.0) -> None:
        """Commit what was received, then disconnect. Uncommitted messages stay unacked at the
        broker and are redelivered next time."""
        self._stopping.set()
        self._inbox.interrupt()
        if self._pump_thread is not None:
            self._pump_thread.join(timeout)
        self._writer.stop(timeout)
        self._client.disconnect()
        self._client.loop_stop()
        self._connected.clear()
        self._metrics.mqtt_connected.set(0)

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    @property
    def refusal(self) -> str | None:
        """Why the broker refused our last connection attempt (None once it accepted one)."""
        return self._refusal

    @property
    def writer_pid(self) -> int | None:
        return self._writer.pid

    def wait_connected(self, timeout: float) -> bool:
        return self._connected.wait(timeout)

    @property
    def failure(self) -> BaseException | None:
        """Why the pump stopped while it should be running (the agent then restarts it)."""
        return self._failure

    @property
    def storage_error(self) -> str | None:
        """Why the database refuses writes, while it does (None once a batch commits)."""
        return self._storage_error

    def stall_seconds(self) -> float:
        """How long messages have waited to be committed: the oldest unanswered batch's time
        at the writer, else the oldest queued message's wait. 0 when nothing waits."""
        sent_at = self._oldest_sent_at
        if sent_at is not None:
            return time.monotonic() - sent_at
        return self._inbox.oldest_age()

    def submit(self, topic: str, payload: bytes, timeout: float) -> bool:
        """Store a message produced inside the agent (HTTP feedback) through the same writer,
        so it is validated, deduplicated and kept for the uplink like any other event.
        Returns whether it was stored (or already was) within `timeout` seconds."""
        outcome = _Outcome()
        try:
            # Urgent: a request is waiting, so its batch goes without waiting out the window.
            self._inbox.put(_Received(topic, payload, mid=0, qos=0, generation=-1,
                                      committed=outcome), urgent=True, timeout=timeout)
        except queue.Full:
            return False
        return outcome.wait(timeout) and outcome.stored

    def stats(self) -> IngestStats:
        with self._stats_lock:
            return IngestStats(Counter(self._stats.stored), self._stats.duplicates,
                               Counter(self._stats.dead_letters), self._stats.batches)

    # -- MQTT callbacks (network thread; they never raise) -----------------------------------

    def _make_client(self) -> mqtt.Client:
        if self._mqtt5:
            client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2,
                                 client_id=self._settings.mqtt_client_id,
                                 protocol=mqtt.MQTTv5, manual_ack=True)
        else:
            client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2,
                                 client_id=self._settings.mqtt_client_id,
                                 protocol=mqtt.MQTTv311, clean_session=False, manual_ack=True)
        if self._settings.mqtt_username:
            password = self._settings.mqtt_password
            client.username_pw_set(self._settings.mqtt_username,
                                   password.get_secret_value() if password else None)
        if self._broker.tls:
            client.tls_set()
        # paho backs off between these bounds, doubling, while the broker is unreachable.
        client.reconnect_delay_set(min_delay=max(1, round(self._settings.reconnect_min_s)),
                                   max_delay=max(1, round(self._settings.reconnect_max_s)))
        client.on_connect = self._on_connect
        client.on_subscribe = self._on_subscribe
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        return client

    def _on_connect(self, client: mqtt.Client, _userdata: Any, _flags: Any,
                    reason_code: Any, _properties: Any) -> None:
        try:
            if reason_code.is_failure:
                # Wrong credentials are not fatal: paho retries with backoff, /readyz says
                # broker: false, and the log names what to fix.
                self._refusal = str(reason_code)
                logger.error("broker %s refused the connection: %s%s; retrying", self._broker,
                             reason_code, CREDENTIALS_HINT if reason_code.value in
                             REFUSED_CREDENTIALS else "")
                return
            self._refusal = None
            self._generation += 1
            # Subscribe every time: after a broker restart without persistence the session
            # (and the subscription with it) may be gone.
            client.subscribe(f"stores/{self._settings.store_id}/+/+", qos=1)
            self._metrics.mqtt_connects.inc()
            logger.info("connected to %s (session present: %s)", self._broker,
                        getattr(_flags, "session_present", None))
        except Exception:
            logger.exception("on_connect failed")

    def _on_subscribe(self, _client: mqtt.Client, _userdata: Any, _mid: int,
                      reason_codes: Any, _properties: Any) -> None:
        try:
            if any(code.is_failure for code in reason_codes):
                logger.error("broker refused our subscription: %s", reason_codes)
                return
            # Connected means subscribed: only from here on is nothing published missed.
            self._connected.set()
            self._metrics.mqtt_connected.set(1)
        except Exception:
            logger.exception("on_subscribe failed")

    def _on_disconnect(self, _client: mqtt.Client, _userdata: Any, _flags: Any,
                       reason_code: Any, _properties: Any) -> None:
        try:
            self._connected.clear()
            self._metrics.mqtt_connected.set(0)
            if not self._stopping.is_set():
                logger.warning("disconnected from %s (%s); reconnecting", self._broker,
                               reason_code)
        except Exception:
            logger.exception("on_disconnect failed")

    def _on_message(self, _client: mqtt.Client, _userdata: Any,
                    message: mqtt.MQTTMessage) -> None:
        try:
            try:
                topic = message.topic
            except UnicodeDecodeError:
                topic = repr(message._topic)
            self._inbox.put(_Received(topic, bytes(message.payload), message.mid, message.qos,
                                      self._generation))
        except Exception:
            # Not acked, so the broker redelivers it; nothing is lost by logging and moving on.
            logger.exception("could not queue a message on %r", getattr(message, "_topic", "?"))

    # -- pump thread: queue → writer process → acks ---------------------------------------

    def _pump_loop(self) -> None:
        limit = self._settings.batch_max_events
        window_s = self._settings.batch_max_wait_ms / 1000
        backlog_check_s = max(window_s, MIN_BACKLOG_CHECK_S)
        in_flight: deque[_InFlight] = deque()
        try:
            while True:
                room = len(in_flight) < MAX_BATCHES_IN_FLIGHT
                if not in_flight:
                    if self._stopping.is_set() and not self._inbox:
                        return
                    # The writer is idle: gather a batch (at once when stopping).
                    self._inbox.wait_for_batch(limit, window_s)
                    self._dispatch(limit, in_flight)
                elif room and len(self._inbox) >= limit:
                    self._dispatch(limit, in_flight)  # a backlog: queue a full batch behind
                else:
                    # The writer is busy: what arrives meanwhile goes with the next batch.
                    # With room for a second one, look again every window for a backlog.
                    answer = self._receive(backlog_check_s if room else WRITER_CHECK_S,
                                           in_flight)
                    if answer is not None:
                        self._complete(answer, in_flight)
                self._oldest_sent_at = in_flight[0][2] if in_flight else None
        except Exception as exc:
            # Unacked messages stay with the broker; the agent restarts ingestion (a new
            # connection, so the broker redelivers them) or exits non-zero.
            logger.exception("ingestion pump stopped unexpectedly")
            self._failure = exc

    def _dispatch(self, limit: int, in_flight: deque[_InFlight]) -> None:
        batch = self._inbox.take(limit)
        if batch:
            self._seq += 1
            in_flight.append((self._seq, batch, time.monotonic()))
            self._send(self._seq, batch, in_flight)

    def _complete(self, answer: tuple[int, BatchResult], in_flight: deque[_InFlight]) -> None:
        done_seq, result = answer
        expected_seq, batch, _ = in_flight.popleft()
        if done_seq != expected_seq:
            raise RuntimeError(f"writer answered batch {done_seq}, expected {expected_seq}")
        self._writer_deaths = 0
        rejected = set(result.rejected_positions)
        for position, item in enumerate(batch):
            if item.committed is not None:
                item.committed.stored = position not in rejected
        self._ack(batch)
        self._record(result, len(batch))
        if self._storage_error is not None:
            logger.info("the database takes writes again")
            self._storage_error = None
            self._metrics.storage_failing.set(0)

    def _send(self, seq: int, batch: list[_Received], in_flight: deque[_InFlight]) -> None:
        try:
            self._writer.send((seq, [(item.topic, item.payload) for item in batch]))
        except WriterDied:
            self._resend_after_writer_death(in_flight)

    def _receive(self, timeout: float, in_flight: deque[_InFlight]
                 ) -> tuple[int, BatchResult] | None:
        try:
            answer = self._writer.receive(timeout)
        except WriterDied:
            self._resend_after_writer_death(in_flight)
            return None
        if answer is not None and answer[0] == STORAGE_ERROR_SEQ:
            if self._storage_error is None:
                self._metrics.storage_failing.set(1)
            self._storage_error = str(answer[1])
            return None
        return answer

    def _resend_after_writer_death(self, in_flight: deque[_InFlight]) -> None:
        """Start a new writer and send it every unanswered batch again, in order; what the old
        one had already committed is dropped as duplicates. A writer that keeps dying before
        it commits anything stops the pump (the agent restarts ingestion, or gives up)."""
        while True:
            self._writer_deaths += 1
            if self._writer_deaths > WRITER_DEATHS_ALLOWED:
                raise RuntimeError(f"the writer process died {self._writer_deaths} times"
                                   " without committing a batch")
            logger.error("ingestion writer process died; restarting it")
            self._metrics.ingest_storage_errors.inc()
            time.sleep(WRITER_RESTART_DELAY_S)
            self._writer.restart()
            try:
                for seq, batch, _ in in_flight:
                    self._writer.send((seq, [(item.topic, item.payload) for item in batch]))
                return
            except WriterDied:
                continue

    def _ack(self, batch: list[_Received]) -> None:
        generation = self._generation
        for item in batch:
            if item.committed is not None:
                item.committed.set()
            # A packet id from an earlier connection may now name another, uncommitted
            # message: never ack it. The broker redelivers those and they dedupe.
            if item.qos > 0 and item.generation == generation:
                self._client.ack(item.mid, item.qos)

    def _record(self, result: BatchResult, size: int) -> None:
        self._metrics.ingest_batch_size.observe(size)
        self._metrics.ingest_commit_seconds.observe(result.seconds)
        for event_type, count in result.stored.items():
            self._metrics.events_ingested.labels(event_type).inc(count)
        for reason, count in result.dead_letters.items():
            self._metrics.dead_letters.labels(reason).inc(count)
        if result.duplicates:
            self._metrics.events_duplicate.inc(result.duplicates)
        if result.storage_errors:
            self._metrics.ingest_storage_errors.inc(result.storage_errors)
        with self._stats_lock:
            self._stats.stored.update(result.stored)
            self._stats.dead_letters.update(result.dead_letters)
            self._stats.duplicates += result.duplicates
            self._stats.batches += 1
