"""The store database: WAL, every table from the migrations, migrations applied once."""

from __future__ import annotations

from pathlib import Path

from edge_agent.storage import open_database
from edge_agent.storage.database import WAL_AUTOCHECKPOINT_PAGES
from edge_agent.storage.migrations import latest_version

TABLES = {"events", "transactions", "transaction_items", "shelf_state", "zone_traffic",
          "presence", "interactions", "products", "customers", "dead_letters"}


def test_new_database_is_wal_with_every_table(tmp_path: Path) -> None:
    db = open_database(tmp_path / "edge.db")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == WAL_AUTOCHECKPOINT_PAGES
    assert set(db.table_names()) >= TABLES
    assert {"consent_personalization", "dietary_restrictions", "allergens"} <= set(
        db["customers"].columns_dict)


def test_migrations_run_once(tmp_path: Path) -> None:
    open_database(tmp_path / "edge.db").close()
    db = open_database(tmp_path / "edge.db")
    versions = [row[0] for row in db.execute("SELECT version FROM schema_migrations")]
    assert versions == list(range(1, latest_version() + 1))
