"""A lake worker: one member of the shared subscription over every store's uplink, writing
each batch to S3 and only then acknowledging it.

Add workers to scale: the broker (IoT Core, or Mosquitto locally) hands each batch to one
member of `$share/lake/...`. A worker holds the acknowledgement of every batch until its
Parquet objects are in S3 (manual PUBACK control), and acknowledges in the order batches
arrived, as MQTT requires; a worker killed mid-write leaves its batches unacknowledged in its
persistent session, and the broker delivers them again. A batch that cannot be read (not a
batch, the wrong store for its topic, a field of the wrong type) is written to the lake's
dead letters with the reason and acknowledged: it would never get better, and must not hold
up the batches behind it. An S3 failure is retried with backoff, never acknowledged.
"""

from __future__ import annotations

import logging
import queue
import random
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
from awscrt import mqtt5

from cloud_sync.lake.store import Lake
from cloud_sync.link.batch import LAKE_ACK_COMMAND, Batch, BatchError, decode_batch, encode_lake_ack
from cloud_sync.link.credentials import LinkCredentials
from cloud_sync.link.mqtt import LinkClient, connect_mqtt5
from cloud_sync.topics import command_topic, lake_subscription, store_of_uplink_topic

logger = logging.getLogger(__name__)

# Unacknowledged batches the broker may send one worker at a time (MQTT 5 Receive Maximum);
# with ~1,500 events a batch, enough to keep one S3 writer busy.
RECEIVE_MAXIMUM = 100
S3_RETRY_FIRST_S = 0.5
S3_RETRY_MAX_S = 30.0
CONNECT_TIMEOUT_S = 30.0
# Batches a worker received but did not acknowledge wait this long in its session for it
# to come back under the same client id (a restart by systemd or ECS). Not longer: while the
# session lives, the broker may count it in the group and hand it batches nobody writes
# (the stores send those again when the lake does not confirm them).
SESSION_EXPIRY_S = 600


@dataclass
class WorkerStats:
    batches: int = 0
    events: int = 0
    dead_letters: int = 0
    s3_retries: int = 0


class LakeWorker:
    def __init__(self, credentials: LinkCredentials, lake: Lake, client_id: str) -> None:
        self._lake = lake
        self._inbox: queue.Queue[tuple[str, bytes, Any] | None] = queue.Queue()
        self._stop = threading.Event()
        self.stats = WorkerStats()
        self._credentials = credentials
        self._client_id = client_id
        self._link: LinkClient | None = None
        self._thread = threading.Thread(target=self._run, name=f"lake-{client_id}", daemon=True)

    @property
    def bucket(self) -> str:
        return self._lake.bucket

    def start(self) -> None:
        self._thread.start()
        self._link = connect_mqtt5(
            self._credentials, self._client_id, clean=False, timeout=CONNECT_TIMEOUT_S,
            session_expiry_s=SESSION_EXPIRY_S, receive_maximum=RECEIVE_MAXIMUM,
            on_publish_data=self._on_publish)
        suback = self._link.subscribe([lake_subscription()])
        code = suback.reason_codes[0]
        if int(code) >= 0x80:
            raise RuntimeError(f"the lake subscription was refused: {code.name}")
        logger.info("lake worker %s subscribed to %s", self._client_id, lake_subscription())

    def stop(self, timeout: float = 60.0) -> None:
        """Leave the group, write and acknowledge what was already received, then end the
        session: a stopped worker's session would otherwise go on receiving its share of
        the batches (the broker counts it as a member) with nobody to write them."""
        link = self._link
        if link is not None and link.client is not None and link.connected.is_set():
            try:
                link.client.unsubscribe(mqtt5.UnsubscribePacket(
                    topic_filters=[lake_subscription()])).result(10)
            except Exception:
                logger.exception("lake worker could not leave the shared subscription")
        self._inbox.put(None)
        self._thread.join(timeout)
        self._stop.set()  # a write still retrying after the timeout gives up, unacknowledged
        self._thread.join(5)
        if link is not None:
            link.stop(end_session=True)

    # -- the client's thread: hand the batch over, keep its acknowledgement ---------------------

    def _on_publish(self, data: mqtt5.PublishReceivedData) -> None:
        try:
            control = data.acquire_publish_acknowledgement_control
            handle = control() if control is not None else None
            packet = data.publish_packet
            self._inbox.put((packet.topic, bytes(packet.payload or b""), handle))
        except Exception:  # never raise into the client's thread
            logger.exception("lake worker could not take a message")

    # -- the writer thread ---------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            item = self._inbox.get()
            if item is None:
                return
            topic, payload, handle = item
            if not self._store(topic, payload):
                return  # stopping: leave it unacknowledged for the next worker
            link = self._link
            if handle is not None and link is not None and link.client is not None:
                link.client.invoke_publish_acknowledgement(handle)

    def _store(self, topic: str, payload: bytes) -> bool:
        """Write the batch, or its dead letter, to S3, retrying S3 until it works or the
        worker stops; True once written."""
        delay = S3_RETRY_FIRST_S
        while not self._stop.is_set():
            try:
                self._write_or_dead_letter(topic, payload)
                return True
            except Exception:
                self.stats.s3_retries += 1
                logger.exception("lake write failed; retrying in %.1f s", delay)
                self._stop.wait(delay * random.uniform(0.5, 1.0))
                delay = min(delay * 2, S3_RETRY_MAX_S)
        return False

    def _write_or_dead_letter(self, topic: str, payload: bytes) -> None:
        try:
            self._write(topic, payload)
        except _Unreadable as exc:
            key = self._lake.put_dead_letter(payload, str(exc), topic, datetime.now(UTC).date())
            self.stats.dead_letters += 1
            logger.warning("dead-lettered a batch from %s (%s) as %s", topic, exc, key)

    def _write(self, topic: str, payload: bytes) -> None:
        store = store_of_uplink_topic(topic)
        try:
            batch = decode_batch(payload)
        except BatchError as exc:
            raise _Unreadable(str(exc)) from None
        if batch.store_id != store:
            raise _Unreadable(f"batch of store {batch.store_id!r} on {topic!r}")
        try:
            self._lake.write_batch(batch)
        except (pa.ArrowInvalid, pa.ArrowTypeError, ValueError, KeyError) as exc:
            raise _Unreadable(f"events do not fit the lake's schema: {exc}") from None
        self.stats.batches += 1
        self.stats.events += len(batch.events)
        self._confirm(batch)

    def _confirm(self, batch: Batch) -> None:
        """Tell the store the batch is written (it keeps the events until then). QoS 1 and
        not awaited: a lost confirmation only makes the store send the batch again."""
        ack = encode_lake_ack(batch)
        link = self._link
        if ack is None or link is None or link.client is None:
            return
        try:
            link.client.publish(mqtt5.PublishPacket(
                topic=command_topic(batch.store_id, LAKE_ACK_COMMAND), payload=ack,
                qos=mqtt5.QoS.AT_LEAST_ONCE))
        except Exception:
            logger.exception("could not confirm batch %s to its store", batch.batch_id)


class _Unreadable(Exception):
    """A batch that no retry will make readable."""
