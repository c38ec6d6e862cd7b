"""The store's side of the uplink: the event log read as an outbox, and the service that
sends it to the cloud (`cloud_sync.link` does the MQTT and the message format)."""
