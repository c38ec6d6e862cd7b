"""Prometheus metrics of one agent, in its own registry so several agents (tests) can coexist."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# Commit latency buckets: a WAL commit with fsync is ~1-10 ms; above 1 s something is wrong.
_COMMIT_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0)
_BATCH_BUCKETS = (1, 5, 10, 50, 100, 250, 500, 1000, 2500, 5000)


class AgentMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.events_ingested = Counter(
            "edge_events_ingested", "Events committed to SQLite, by type", ["type"],
            registry=self.registry)
        self.events_duplicate = Counter(
            "edge_events_duplicate", "Messages ignored because their event_id was stored",
            registry=self.registry)
        self.dead_letters = Counter(
            "edge_dead_letters", "Messages dead-lettered, by reason kind", ["reason"],
            registry=self.registry)
        self.ingest_batch_size = Histogram(
            "edge_ingest_batch_size", "Messages per SQLite transaction", buckets=_BATCH_BUCKETS,
            registry=self.registry)
        self.ingest_commit_seconds = Histogram(
            "edge_ingest_commit_seconds", "Time to validate and commit one batch",
            buckets=_COMMIT_BUCKETS, registry=self.registry)
        self.ingest_storage_errors = Counter(
            "edge_ingest_storage_errors", "Batches that SQLite failed to commit (retried)",
            registry=self.registry)
        self.storage_failing = Gauge(
            "edge_storage_failing", "1 while the database refuses writes (disk full, I/O):"
            " nothing is acknowledged meanwhile", registry=self.registry)
        self.storage_free_bytes = Gauge(
            "edge_storage_free_bytes", "Free space on the database's filesystem",
            registry=self.registry)
        self.storage_low = Gauge(
            "edge_storage_low", "1 while free space is below storage_alarm_free_mb",
            registry=self.registry)
        self.ingest_stall_seconds = Gauge(
            "edge_ingest_stall_seconds", "How long received messages have waited for a commit",
            registry=self.registry)
        self.ingest_restarts = Counter(
            "edge_ingest_restarts", "Ingestion restarted after it stopped unexpectedly",
            registry=self.registry)
        self.purged_rows = Counter(
            "edge_purged_rows", "Rows removed by retention, by table", ["table"],
            registry=self.registry)
        self.mqtt_connected = Gauge(
            "edge_mqtt_connected", "1 while connected to the store broker", registry=self.registry)
        self.mqtt_connects = Counter(
            "edge_mqtt_connects", "Successful (re)connections to the store broker",
            registry=self.registry)
        # The cloud link (edge_agent/uplink).
        self.uplink_backlog_events = Gauge(
            "edge_uplink_backlog_events", "Committed events the cloud has not acknowledged",
            registry=self.registry)
        self.uplink_oldest_unsent_seconds = Gauge(
            "edge_uplink_oldest_unsent_seconds", "Age of the oldest event not yet uplinked",
            registry=self.registry)
        self.uplink_events = Counter(
            "edge_uplink_events", "Events the cloud acknowledged (rate: events/s)",
            registry=self.registry)
        self.uplink_bytes = Counter(
            "edge_uplink_bytes", "Compressed bytes the cloud acknowledged (rate: bytes/s)",
            registry=self.registry)
        self.uplink_connected = Gauge(
            "edge_uplink_connected", "1 while connected to the cloud", registry=self.registry)
        self.uplink_state = Gauge(
            "edge_uplink_state", "1 for the link's current state", ["state"],
            registry=self.registry)
        self.uplink_alarm = Gauge(
            "edge_uplink_alarm", "1 while the backlog is too old or the cloud refuses us",
            registry=self.registry)
        self.uplink_unconfirmed_events = Gauge(
            "edge_uplink_unconfirmed_events", "Events IoT Core took (PUBACK) that the lake has"
            " not confirmed writing yet", registry=self.registry)
        self.uplink_rewinds = Counter(
            "edge_uplink_rewinds", "Times unconfirmed events were sent again from the lake's"
            " watermark", registry=self.registry)
        self.uplink_refused = Counter(
            "edge_uplink_refused", "Batches the cloud refused (PUBACK reason 0x80 or above)",
            registry=self.registry)
