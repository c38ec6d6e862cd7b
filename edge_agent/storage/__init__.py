"""The store's local SQLite database: schema migrations and the ingestion writer."""

import sys


def _import_sqlite_utils_without_pandas() -> None:
    """sqlite-utils imports pandas whenever it is installed, only to map `pd.Timestamp`
    columns, which the store never writes. pandas (and pyarrow behind it) cost ~75 MB in
    each process of the agent, so hide it for that one import. Anyone who needs pandas
    later (evaluation, the cloud) still imports it as usual."""
    if "sqlite_utils" in sys.modules or "pandas" in sys.modules:
        return
    sys.modules["pandas"] = None  # type: ignore[assignment]  # import raises ImportError
    try:
        import sqlite_utils  # noqa: F401
    finally:
        del sys.modules["pandas"]


_import_sqlite_utils_without_pandas()

from edge_agent.storage.database import open_database  # noqa: E402

__all__ = ["open_database"]
