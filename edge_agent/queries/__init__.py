"""Read-side questions about the store's recent history, answered from SQLite."""
