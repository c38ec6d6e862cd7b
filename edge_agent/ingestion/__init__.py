"""MQTT ingestion: broker messages → validated, deduplicated rows in the store database.

`service.IngestionService` runs in the agent; `writer_process` is the SQLite writer child.
"""
