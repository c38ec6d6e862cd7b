"""Master data as a contract between the chain and its stores: the records (catalog,
customers, consent, erasure), their validation, and reading them from CSV or JSON lines.
The store applies them (`edge_agent.masterdata`); the cloud validates and sends them
(`cloud_sync.masterdata`)."""
