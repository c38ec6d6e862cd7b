"""The cloud link as one service of the agent process: one MQTT connection (IoT Core allows
one per thing) carrying the uplink (the outbox and its publisher) and the master-data
downlink, and the link's state as metrics and readiness see it.

The same connection brings the lake's confirmations (`lake-ack`): the store keeps an event
until the lake has written it, and sends again from the lake's watermark what IoT Core took
but no lake worker confirmed (edge_agent/uplink/confirmations.py).

A store with no link is still ready (the cloud is an improvement, never a dependency); an
alarm is raised when the oldest event the lake lacks is older than
`uplink_backlog_alarm_hours`, when the disk runs low with events still unsent, or when the
cloud refuses our certificate.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import asdict, dataclass
from typing import Any

from awscrt import mqtt5

from cloud_sync.analysis.downlink import INSIGHTS_COMMAND, INSIGHTS_RESULTS_SUFFIX
from cloud_sync.link.batch import LAKE_ACK_COMMAND, BatchError, decode_lake_ack
from cloud_sync.link.credentials import LinkCredentials
from cloud_sync.link.masterdata import MASTER_DATA_COMMAND, RESULTS_SUFFIX
from cloud_sync.link.mqtt import LinkClient, open_link
from cloud_sync.link.publisher import BatchPublisher, LinkState, OutgoingBatchLike
from cloud_sync.topics import command_topic, telemetry_prefix
from edge_agent.insights.downlink import InsightsDownlink
from edge_agent.masterdata.downlink import MasterDataDownlink
from edge_agent.metrics import AgentMetrics
from edge_agent.settings import Settings, SettingsError
from edge_agent.storage import open_database
from edge_agent.uplink.confirmations import LakeConfirmations
from edge_agent.uplink.outbox import Outbox, OutgoingBatch

logger = logging.getLogger(__name__)

# Unconfirmed batches are sent again after `uplink_lake_confirm_timeout_s`, then after twice
# as long each time, up to an hour: a cloud with no lake worker for a day costs bounded
# bandwidth.
MAX_REWIND_INTERVAL_S = 3600.0
# Events sent but not confirmed beyond which nothing new is sent: what a rewind may resend.
MAX_UNCONFIRMED_EVENTS = 250_000

STATES = (LinkState.CONNECTING, LinkState.CONNECTED, LinkState.OFFLINE,
          LinkState.NOT_AUTHORIZED, LinkState.STOPPED)


@dataclass(frozen=True)
class LinkStatus:
    state: str
    backlog_events: int  # not yet confirmed by the lake (sent or not)
    unconfirmed_events: int  # sent (PUBACK) but not yet confirmed by the lake
    oldest_unsent_s: float | None
    alarm: str | None
    last_error: str | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def load_credentials(settings: Settings) -> LinkCredentials:
    """The link's credentials, checked against this store (a clear SettingsError if not)."""
    directory = settings.cloud_credentials
    assert directory is not None
    try:
        credentials = LinkCredentials.load(directory)
    except (OSError, ValueError) as exc:
        raise SettingsError(f"cloud_credentials: {exc}") from None
    if credentials.thing_name != settings.store_id:
        raise SettingsError(f"cloud_credentials: issued to store {credentials.thing_name!r},"
                            f" not to this store ({settings.store_id!r})")
    if not credentials.pseudonym_key:
        raise SettingsError(f"cloud_credentials: {directory} has no pseudonym key; shopper"
                            " ids cannot leave the store without one")
    return credentials


class UplinkService:
    def __init__(self, settings: Settings, metrics: AgentMetrics) -> None:
        self._settings = settings
        self._metrics = metrics
        credentials = load_credentials(settings)
        self._conn = open_database(settings.db, synchronous=settings.sqlite_synchronous,
                                   check_same_thread=False).conn
        self._outbox_lock = threading.Lock()
        self.outbox = Outbox(self._conn, settings.store_id, credentials.pseudonym_key or b"",
                             lock=self._outbox_lock)
        self._credentials = credentials
        self._link: LinkClient | None = None
        self.downlink = MasterDataDownlink(settings, acknowledge=self._acknowledge,
                                           report=self._report)
        self.insights = InsightsDownlink(
            settings, credentials.pseudonym_key or b"", acknowledge=self._acknowledge,
            report=lambda result: self._report(result, INSIGHTS_RESULTS_SUFFIX))
        self.publisher: BatchPublisher | None = None
        self.confirmations = LakeConfirmations(self.outbox.lake_watermark())
        self._rewind_after = settings.uplink_lake_confirm_timeout_s
        self._refused_seen = 0
        self._status = LinkStatus(LinkState.STOPPED, 0, 0, None, None, None)
        self._storage_low = False

    def start(self) -> None:
        # Started whether or not the cloud answers: it connects, and reconnects, by itself.
        # What the lake had not confirmed before we stopped goes again.
        self.outbox.rewind_to_lake()
        self._link = open_link(self._credentials, self._credentials.thing_name, clean=False,
                               on_publish_data=self._on_message)
        store = self._settings.store_id
        self._link.subscribe_on_connect([command_topic(store, MASTER_DATA_COMMAND),
                                         command_topic(store, INSIGHTS_COMMAND),
                                         command_topic(store, LAKE_ACK_COMMAND)])
        self.downlink.start()
        self.insights.start()
        self.publisher = BatchPublisher(
            self._credentials, self.outbox, on_delivered=self._delivered, link=self._link,
            hold=lambda: self.confirmations.unconfirmed_events() >= MAX_UNCONFIRMED_EVENTS)
        self.publisher.start()
        logger.info("cloud link for store %s to %s", self._settings.store_id,
                    self._credentials.endpoint)

    def stop(self) -> None:
        if self.publisher is not None:
            self.publisher.stop()
        self.downlink.stop()
        self.insights.stop()
        if self._link is not None:
            self._link.stop()
            self._link = None
        # What the lake confirmed since the last refresh need not be sent again.
        self.outbox.confirm_lake(self.confirmations.watermark)
        self._conn.close()

    @property
    def link(self) -> LinkClient:
        """The store's one connection to the cloud (model release jobs share it)."""
        if self._link is None:
            raise RuntimeError("the uplink is not started")
        return self._link

    def status(self) -> LinkStatus:
        return self._status

    def set_storage_low(self, low: bool) -> None:
        self._storage_low = low

    def refresh(self) -> LinkStatus:
        """Record the lake's watermark, send again what it never confirmed, read the
        backlog, set the metrics and the alarm (a periodic task calls this)."""
        self.outbox.confirm_lake(self.confirmations.watermark)
        self._rewind_if_unconfirmed()
        backlog = self.outbox.backlog()
        age = (max(0.0, time.time() - backlog.oldest_received_at)
               if backlog.oldest_received_at is not None else None)
        publisher = self.publisher
        state = publisher.state if publisher is not None else LinkState.STOPPED
        alarm = None
        if state == LinkState.NOT_AUTHORIZED:
            alarm = "the cloud refuses this store's certificate (NOT_AUTHORIZED)"
        elif age is not None and age > self._settings.uplink_backlog_alarm_hours * 3600:
            alarm = (f"events unsent for {age / 3600:.1f} h (alarm at"
                     f" {self._settings.uplink_backlog_alarm_hours:g} h)")
        elif self._storage_low and backlog.events:
            alarm = f"storage low with {backlog.events} events unsent"
        if alarm and alarm != self._status.alarm:
            logger.warning("uplink alarm: %s; link %s", alarm, state)
        unconfirmed = self.confirmations.unconfirmed_events()
        self._status = LinkStatus(state, backlog.events, unconfirmed,
                                  None if age is None else round(age, 1), alarm,
                                  publisher.last_error if publisher else None)
        metrics = self._metrics
        metrics.uplink_backlog_events.set(backlog.events)
        metrics.uplink_unconfirmed_events.set(unconfirmed)
        metrics.uplink_oldest_unsent_seconds.set(age or 0.0)
        metrics.uplink_connected.set(int(publisher is not None and publisher.connected))
        for name in STATES:
            metrics.uplink_state.labels(name).set(int(name == state))
        metrics.uplink_alarm.set(int(alarm is not None))
        if publisher is not None and publisher.stats.refused > self._refused_seen:
            metrics.uplink_refused.inc(publisher.stats.refused - self._refused_seen)
            self._refused_seen = publisher.stats.refused
        return self._status

    def _rewind_if_unconfirmed(self) -> None:
        publisher = self.publisher
        oldest = self.confirmations.oldest_unconfirmed_at()
        if publisher is None or not publisher.connected or oldest is None:
            if oldest is None:
                self._rewind_after = self._settings.uplink_lake_confirm_timeout_s
            return
        if time.monotonic() - oldest < self._rewind_after:
            return
        logger.warning("the lake has not confirmed %d events sent %.0f s ago or more;"
                       " sending again from event %d", self.confirmations.unconfirmed_events(),
                       self._rewind_after, self.confirmations.watermark)
        self.outbox.rewind_to_lake()
        self.confirmations.reset(self.outbox.lake_watermark())
        publisher.rewind()
        self._metrics.uplink_rewinds.inc()
        self._rewind_after = min(self._rewind_after * 2, MAX_REWIND_INTERVAL_S)

    def _on_message(self, data: mqtt5.PublishReceivedData) -> None:
        """The link's thread: a lake confirmation (acknowledged automatically), insights,
        or master data for the downlink. Never raises."""
        topic = data.publish_packet.topic
        if topic.startswith("$aws/"):
            return  # IoT Jobs answers: the jobs client on this connection takes them
        if topic.endswith("/" + INSIGHTS_COMMAND):
            self.insights.on_message(data)
            return
        if not topic.endswith("/" + LAKE_ACK_COMMAND):
            self.downlink.on_message(data)
            return
        try:
            first, last = decode_lake_ack(bytes(data.publish_packet.payload or b""))
            self.confirmations.confirmed(first, last)
        except BatchError as exc:
            logger.warning("ignored a lake confirmation: %s", exc)

    def _acknowledge(self, handle: object) -> None:
        link = self._link
        if link is not None and link.client is not None:
            link.client.invoke_publish_acknowledgement(handle)

    def _report(self, result: bytes, suffix: str = RESULTS_SUFFIX) -> None:
        link = self._link
        if link is not None and link.client is not None and link.connected.is_set():
            link.client.publish(mqtt5.PublishPacket(
                topic=telemetry_prefix(self._settings.store_id) + suffix,
                payload=result, qos=mqtt5.QoS.AT_LEAST_ONCE))

    def _delivered(self, batch: OutgoingBatchLike) -> None:
        assert isinstance(batch, OutgoingBatch)
        self.confirmations.sent(batch.first_seq, batch.last_seq, batch.events,
                                time.monotonic())
        self._metrics.uplink_events.inc(batch.events)
        self._metrics.uplink_bytes.inc(len(batch.payload))
