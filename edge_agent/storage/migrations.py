"""Schema migrations as registered, numbered steps, each applied once in its own transaction.

Add a step by writing a function and decorating it with `@migration(N, "what it does")`;
never edit a step that has shipped, since stores run every step exactly once.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import sqlite_utils

MIGRATIONS_TABLE = "schema_migrations"
Step = Callable[[sqlite_utils.Database], None]
_STEPS: dict[int, tuple[str, Step]] = {}


def migration(version: int, name: str) -> Callable[[Step], Step]:
    def register(step: Step) -> Step:
        if version in _STEPS:
            raise ValueError(f"migration {version} registered twice")
        _STEPS[version] = (name, step)
        return step

    return register


def latest_version() -> int:
    return max(_STEPS)


def migrate(db: sqlite_utils.Database) -> list[str]:
    """Apply every step newer than the database's version; returns the names applied."""
    db.execute(
        f"CREATE TABLE IF NOT EXISTS {MIGRATIONS_TABLE} "
        "(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
    )
    done = {row[0] for row in db.execute(f"SELECT version FROM {MIGRATIONS_TABLE}")}
    applied = []
    for version in sorted(_STEPS):
        if version in done:
            continue
        name, step = _STEPS[version]
        db.execute("BEGIN IMMEDIATE")
        try:
            step(db)
            db.execute(
                f"INSERT INTO {MIGRATIONS_TABLE} (version, name, applied_at) VALUES (?, ?, ?)",
                [version, name, datetime.now(UTC).isoformat()],
            )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        applied.append(f"{version}:{name}")
    return applied


@migration(1, "events, sales, sensors, catalog, customers, dead letters")
def _initial_schema(db: sqlite_utils.Database) -> None:
    db["events"].create(
        {"event_id": str, "store_id": str, "type": str, "topic": str, "ts": str,
         "received_at": str, "payload": str},
        pk="event_id", not_null={"store_id", "type", "topic", "ts", "received_at", "payload"},
    )
    db["events"].create_index(["type", "ts"])
    db["transactions"].create(
        {"transaction_id": str, "event_id": str, "store_id": str, "register_id": str,
         "customer_id": str, "ts": str, "total": float, "item_count": int},
        pk="transaction_id", not_null={"event_id", "store_id", "ts", "total"},
    )
    db["transactions"].create_index(["customer_id", "ts"])
    db["transactions"].create_index(["ts"])
    db["transaction_items"].create(
        {"transaction_id": str, "line_no": int, "product_id": str, "quantity": float,
         "unit_price": float, "discount": float},
        pk=("transaction_id", "line_no"),
        foreign_keys=[("transaction_id", "transactions", "transaction_id")],
    )
    db["transaction_items"].create_index(["product_id"])
    # Latest reading per shelf; the full history stays in `events`.
    db["shelf_state"].create(
        {"shelf_id": str, "product_id": str, "quantity": int, "weight_g": float,
         "capacity": int, "ts": str, "event_id": str},
        pk="shelf_id", not_null={"product_id", "capacity", "ts", "event_id"},
    )
    db["shelf_state"].create_index(["product_id"])
    db["zone_traffic"].create(
        {"event_id": str, "zone_id": str, "ts": str, "people": int, "avg_dwell_s": float},
        pk="event_id", not_null={"zone_id", "ts", "people", "avg_dwell_s"},
    )
    db["zone_traffic"].create_index(["zone_id", "ts"])
    db["presence"].create(
        {"event_id": str, "device_id": str, "customer_id": str, "zone_id": str, "ts": str},
        pk="event_id", not_null={"customer_id", "zone_id", "ts"},
    )
    db["presence"].create_index(["zone_id", "ts"])
    db["presence"].create_index(["customer_id", "ts"])
    db["interactions"].create(
        {"event_id": str, "device_id": str, "customer_id": str, "action": str,
         "product_id": str, "context": str, "model_version": str, "ts": str},
        pk="event_id", not_null={"action", "product_id", "ts"},
    )
    db["interactions"].create_index(["customer_id", "ts"])
    db["products"].create(
        {"product_id": str, "name": str, "brand": str, "department": str, "category": str,
         "price": float, "size": str, "temperature_zone": str, "allergens": str,
         "diets": str, "active": int},
        pk="product_id", not_null={"name", "category"},
        defaults={"allergens": "[]", "diets": "[]", "active": 1},
    )
    db["products"].create_index(["category"])
    db["customers"].create(
        {"customer_id": str, "loyalty_number": str, "household_size": int,
         "consent_personalization": int, "consent_staff_assist": int,
         "dietary_restrictions": str, "allergens": str, "created_at": str},
        pk="customer_id",
        defaults={"consent_personalization": 0, "consent_staff_assist": 0,
                  "dietary_restrictions": "[]", "allergens": "[]"},
    )
    db["customers"].create_index(["loyalty_number"], unique=True)
    db["dead_letters"].create(
        {"id": int, "received_at": str, "topic": str, "reason": str, "raw": bytes,
         "raw_size": int, "event_id": str},
        pk="id", not_null={"received_at", "topic", "reason", "raw", "raw_size"},
    )
    db["dead_letters"].create_index(["received_at"])


@migration(2, "shopper features kept up to date by the writer; agent metadata")
def _shopper_features(db: sqlite_utils.Database) -> None:
    db["shopper_features"].create(
        {"customer_id": str, "state": bytes, "sales": int, "updated_at": str},
        pk="customer_id", not_null={"state", "sales", "updated_at"})
    db["agent_meta"].create({"key": str, "value": str}, pk="key", not_null={"value"})


@migration(3, "daily sales per product, kept up to date by the writer")
def _product_daily_sales(db: sqlite_utils.Database) -> None:
    db["product_daily_sales"].create(
        {"product_id": str, "day": str, "baskets": int, "units": float},
        pk=("product_id", "day"), not_null={"baskets", "units"})
    db["product_daily_sales"].create_index(["day"])
    # Stores upgrading from version 2 already have sales: count them once here.
    db.execute(
        "INSERT INTO product_daily_sales (product_id, day, baskets, units)"
        " SELECT i.product_id, substr(t.ts, 1, 10), COUNT(DISTINCT t.transaction_id),"
        " SUM(i.quantity) FROM transactions t JOIN transaction_items i USING (transaction_id)"
        " GROUP BY i.product_id, substr(t.ts, 1, 10)")


@migration(4, "a catalog version, bumped by any change to products")
def _catalog_version(db: sqlite_utils.Database) -> None:
    # Request handlers keep the catalog in memory and reread it only when this moves:
    # one tiny read per request instead of a product query, and no stale product ever.
    db.execute("CREATE TABLE catalog_version (id INTEGER PRIMARY KEY CHECK (id = 1),"
               " version INTEGER NOT NULL)")
    db.execute("INSERT INTO catalog_version (id, version) VALUES (1, 0)")
    for change in ("INSERT", "UPDATE", "DELETE"):
        db.execute(f"CREATE TRIGGER products_{change.lower()}_bumps_version AFTER {change}"
                   " ON products BEGIN"
                   " UPDATE catalog_version SET version = version + 1 WHERE id = 1; END")


@migration(5, "compact events (commit-order seq, body without the envelope) and sales"
              " (integer sale ids); dead letters deduplicated by digest")
def _compact_events_and_sales(db: sqlite_utils.Database) -> None:
    # Bytes per stored event decide how much history a store's disk holds (docs/storage.md):
    # the envelope lives in columns, not again in the body; events need no (type, ts) index;
    # a sale's lines refer to it by an integer, not by a 38-character transaction id.
    conn = db.conn
    conn.create_function("device_of", 1, lambda topic: topic.split("/", 3)[-1],
                         deterministic=True)
    conn.execute("ALTER TABLE events RENAME TO events_v1")
    # seq is the commit order: what the uplink's durable cursor counts.
    conn.execute(
        "CREATE TABLE events (seq INTEGER PRIMARY KEY, event_id TEXT NOT NULL UNIQUE,"
        " type TEXT NOT NULL, device_id TEXT NOT NULL, ts TEXT NOT NULL,"
        " received_at INTEGER NOT NULL, body TEXT NOT NULL)")
    conn.execute(
        "INSERT INTO events (event_id, type, device_id, ts, received_at, body)"
        " SELECT event_id, type, device_of(topic), ts, CAST(unixepoch(received_at) AS INTEGER),"
        " json_remove(payload, '$.event_id', '$.store_id', '$.ts', '$.type')"
        " FROM events_v1 ORDER BY rowid")
    conn.execute("DROP TABLE events_v1")
    conn.execute("CREATE INDEX events_received_at ON events (received_at)")

    conn.execute("ALTER TABLE transaction_items RENAME TO transaction_items_v1")
    conn.execute("ALTER TABLE transactions RENAME TO transactions_v1")
    conn.execute(
        "CREATE TABLE transactions (sale_id INTEGER PRIMARY KEY,"
        " transaction_id TEXT NOT NULL UNIQUE, register_id TEXT, customer_id TEXT,"
        " ts TEXT NOT NULL, total REAL NOT NULL, item_count INTEGER NOT NULL)")
    conn.execute(
        "INSERT INTO transactions (transaction_id, register_id, customer_id, ts, total,"
        " item_count) SELECT transaction_id, register_id, customer_id, ts, total,"
        " COALESCE(item_count, 0) FROM transactions_v1 ORDER BY ts, rowid")
    conn.execute(
        "CREATE TABLE transaction_items (sale_id INTEGER NOT NULL REFERENCES transactions"
        " ON DELETE CASCADE, line_no INTEGER NOT NULL, product_id TEXT NOT NULL,"
        " quantity REAL NOT NULL, unit_price REAL NOT NULL, discount REAL NOT NULL,"
        " PRIMARY KEY (sale_id, line_no)) WITHOUT ROWID")
    conn.execute(
        "INSERT INTO transaction_items SELECT t.sale_id, i.line_no, i.product_id, i.quantity,"
        " i.unit_price, COALESCE(i.discount, 0) FROM transaction_items_v1 i"
        " JOIN transactions t USING (transaction_id)")
    conn.execute("DROP TABLE transaction_items_v1")
    conn.execute("DROP TABLE transactions_v1")
    conn.execute("CREATE INDEX transactions_customer_ts ON transactions (customer_id, ts)")
    conn.execute("CREATE INDEX transactions_ts ON transactions (ts)")
    # Retention deletes the oldest rows of the sensor tables in small batches: each batch
    # must find them through an index, not by scanning a (zone, ts) index inside the lock.
    for table in ("zone_traffic", "presence", "interactions"):
        conn.execute(f"CREATE INDEX {table}_ts ON {table} (ts)")

    # A retained or repeating bad message costs one row, whatever it is sent again.
    conn.execute("ALTER TABLE dead_letters ADD COLUMN digest BLOB")
    conn.execute("ALTER TABLE dead_letters ADD COLUMN repeats INTEGER NOT NULL DEFAULT 0")
    conn.execute("ALTER TABLE dead_letters ADD COLUMN last_at TEXT")
    conn.execute("CREATE UNIQUE INDEX dead_letters_digest ON dead_letters (digest)")


@migration(6, "master data: per-record versions, the batches applied, erased shoppers")
def _master_data(db: sqlite_utils.Database) -> None:
    conn = db.conn
    # A record from an older batch (a late downlink message) never overwrites a newer one.
    conn.execute("ALTER TABLE products ADD COLUMN md_version INTEGER NOT NULL DEFAULT 0")
    conn.execute("ALTER TABLE customers ADD COLUMN md_version INTEGER NOT NULL DEFAULT 0")
    # A batch (a file import, a downlink message) applied twice changes nothing the second time.
    conn.execute("CREATE TABLE master_data_batches (batch_id TEXT PRIMARY KEY, kind TEXT NOT"
                 " NULL, version INTEGER NOT NULL, records INTEGER NOT NULL,"
                 " applied_at TEXT NOT NULL)")
    conn.execute("CREATE TABLE erased_customers (customer_id TEXT PRIMARY KEY,"
                 " erased_at TEXT NOT NULL)")


@migration(7, "the uplink's durable cursor over the event log, and this database's outbox id")
def _uplink_cursor(db: sqlite_utils.Database) -> None:
    # One row. `seq`: the last event IoT Core acknowledged (PUBACK); `lake_seq`: the last
    # below which the lake confirmed writing every batch (retention waits for this one);
    # `outbox_id` is random per database so a reinstalled store (seq counting from 1 again)
    # never reuses a batch id.
    db.conn.execute("CREATE TABLE uplink_cursor (id INTEGER PRIMARY KEY CHECK (id = 1),"
                    " outbox_id TEXT NOT NULL, seq INTEGER NOT NULL,"
                    " lake_seq INTEGER NOT NULL DEFAULT 0, updated_at TEXT)")
    db.conn.execute("INSERT INTO uplink_cursor (id, outbox_id, seq)"
                    " VALUES (1, lower(hex(randomblob(6))), 0)")


@migration(8, "opaque shopper ids for devices: a random reference per customer")
def _shopper_refs(db: sqlite_utils.Database) -> None:
    # Customer ids come from the chain's loyalty system and are often sequential; a device
    # addressing shoppers by them could walk the whole list. Devices get this instead: 128
    # random bits, set by a trigger so every way a customer row is written gets one.
    conn = db.conn
    conn.execute("ALTER TABLE customers ADD COLUMN shopper_ref TEXT")
    conn.execute("UPDATE customers SET shopper_ref = lower(hex(randomblob(16)))")
    conn.execute("CREATE UNIQUE INDEX customers_shopper_ref ON customers (shopper_ref)")
    conn.execute("CREATE TRIGGER customers_new_shopper_ref AFTER INSERT ON customers"
                 " WHEN NEW.shopper_ref IS NULL BEGIN"
                 " UPDATE customers SET shopper_ref = lower(hex(randomblob(16)))"
                 " WHERE rowid = NEW.rowid; END")


@migration(9, "the chain's analyses of shoppers, sent down by the cloud: every one kept")
def _shopper_insights(db: sqlite_utils.Database) -> None:
    # One row per analysis (the history); staff see the newest by `created_at`.
    # `analysis_id` is the cloud's idempotency key: the same analysis sent twice is one row.
    # Rows exist only for shoppers with staff-assist consent; erasure deletes them.
    conn = db.conn
    conn.execute("CREATE TABLE shopper_insights (id INTEGER PRIMARY KEY,"
                 " analysis_id TEXT NOT NULL UNIQUE, customer_id TEXT NOT NULL,"
                 " producer TEXT NOT NULL, model_id TEXT, fallback_reason TEXT,"
                 " created_at TEXT NOT NULL, received_at TEXT NOT NULL, batch_id TEXT,"
                 " version INTEGER NOT NULL, analysis TEXT NOT NULL)")
    conn.execute("CREATE INDEX shopper_insights_customer"
                 " ON shopper_insights (customer_id, created_at)")


@migration(10, "interactions by model version and time, for a release's click-through")
def _interactions_by_version(db: sqlite_utils.Database) -> None:
    # A release's probation counts one version's impressions and clicks in a window
    # (edge_agent/updates/clickthrough.py); without this it reads the whole table, which
    # holds 30 days of every kiosk's feedback.
    db.conn.execute("CREATE INDEX interactions_version_ts"
                    " ON interactions (model_version, ts)")


def empty_shelf(row: str = "") -> str:
    """The condition of an empty shelf: its latest reading says none are left (a reading
    without a count or weight is not empty). Queries spell it exactly so, unqualified, to
    use the partial index `shelf_state_empty`."""
    return f"COALESCE({row}quantity, {row}weight_g, 1) <= 0"


@migration(11, "a stock version, bumped when a shelf becomes empty or is stocked again")
def _stock_version(db: sqlite_utils.Database) -> None:
    # Request handlers keep the store's empty shelves in memory and reread them only when
    # this moves (as the catalog, migration 4): shelf readings arrive many times a second,
    # a shelf emptying or being refilled a few times an hour.
    conn = db.conn
    conn.execute("CREATE TABLE stock_version (id INTEGER PRIMARY KEY CHECK (id = 1),"
                 " version INTEGER NOT NULL)")
    conn.execute("INSERT INTO stock_version (id, version) VALUES (1, 0)")
    bump = " BEGIN UPDATE stock_version SET version = version + 1 WHERE id = 1; END"
    new, old = empty_shelf("NEW."), empty_shelf("OLD.")
    conn.execute(f"CREATE TRIGGER shelf_emptied_on_insert AFTER INSERT ON shelf_state"
                 f" WHEN {new}{bump}")
    conn.execute(f"CREATE TRIGGER shelf_emptiness_changed AFTER UPDATE ON shelf_state"
                 f" WHEN ({old}) != ({new}) OR (({new}) AND OLD.product_id != NEW.product_id)"
                 f"{bump}")
    conn.execute(f"CREATE TRIGGER shelf_emptied_on_delete AFTER DELETE ON shelf_state"
                 f" WHEN {old}{bump}")
    # The empty shelves, read without scanning every shelf of the store.
    conn.execute("CREATE INDEX shelf_state_empty ON shelf_state (product_id)"
                 f" WHERE {empty_shelf()}")
