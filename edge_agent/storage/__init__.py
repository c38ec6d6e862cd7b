"""The store's local SQLite database: schema migrations and the ingestion writer."""

from edge_agent.storage.database import open_database

__all__ = ["open_database"]
