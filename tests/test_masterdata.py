"""Master data through its one path: `edge-agent import` as an operator runs it (a real
process, a real database file), and the same module the cloud downlink will call."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from edge_agent.masterdata import MasterDataError, apply_records, read_records
from edge_agent.storage import open_database
from edge_agent.storage.event_writer import EventWriter, RawMessage
from tests.api.conftest import seed_catalog
from tests.ingestion.conftest import (
    STORE,
    TOPIC_BY_TYPE,
    count,
    interaction_event,
    pos_event,
    presence_event,
    rows,
)

CATALOG_CSV = """product_id,name,category,brand,price,temperature_zone,allergens,diets
P1,Whole milk 1 l,milk,Dairyland,1.09,chilled,milk,vegetarian;gluten_free
P2,Sourdough loaf,bread,,2.50,ambient,gluten,vegan;vegetarian
P3,Frozen peas 1 kg,frozen vegetables,Green,1.99,frozen,,vegan
"""
CUSTOMERS_JSONL = "\n".join(json.dumps(record) for record in [
    {"customer_id": "C1", "loyalty_number": "4000000001", "household_size": 2,
     "consent_personalization": True, "consent_staff_assist": True},
    {"customer_id": "C2", "loyalty_number": "4000000002",
     "consent_personalization": False, "allergens": ["milk"]},
]) + "\n"


def run_import(db: Path, kind: str, file: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "edge_agent.cli", "import", kind, str(file),
                           "--db", str(db), *extra], capture_output=True, text=True,
                          timeout=60, stdin=subprocess.DEVNULL)


def test_an_operator_imports_the_catalog_and_customers_from_files(tmp_path: Path) -> None:
    db = tmp_path / "edge.db"
    catalog = tmp_path / "catalog.csv"
    catalog.write_text(CATALOG_CSV)
    customers = tmp_path / "customers.jsonl"
    customers.write_text(CUSTOMERS_JSONL)

    done = run_import(db, "catalog", catalog)
    assert done.returncode == 0, done.stderr
    assert "catalog: 3 records applied" in done.stdout
    assert run_import(db, "customers", customers).returncode == 0
    (milk,) = rows(db, "SELECT * FROM products WHERE product_id = 'P1'")
    assert (milk["name"], milk["price"], milk["temperature_zone"]) == (
        "Whole milk 1 l", 1.09, "chilled")
    assert json.loads(milk["diets"]) == ["vegetarian", "gluten_free"]
    assert rows(db, "SELECT brand FROM products WHERE product_id = 'P2'")[0]["brand"] is None
    (c2,) = rows(db, "SELECT * FROM customers WHERE customer_id = 'C2'")
    assert (c2["loyalty_number"], c2["consent_personalization"]) == ("4000000002", 0)
    assert json.loads(c2["allergens"]) == ["milk"]

    again = run_import(db, "catalog", catalog)
    assert again.returncode == 0 and "already imported; nothing changed" in again.stdout


def test_a_file_with_one_bad_row_changes_nothing_and_names_the_row(tmp_path: Path) -> None:
    db = tmp_path / "edge.db"
    good = tmp_path / "catalog.csv"
    good.write_text(CATALOG_CSV)
    assert run_import(db, "catalog", good).returncode == 0
    bad = tmp_path / "catalog-v2.csv"
    bad.write_text(CATALOG_CSV.replace("1.09", "0.99").replace("2.50", "-2.50"))

    refused = run_import(db, "catalog", bad)
    assert refused.returncode == 1
    assert "row 3, field 'price'" in refused.stderr  # the loaf is on line 3 of the file
    assert "nothing changed" in refused.stderr
    assert rows(db, "SELECT price FROM products WHERE product_id = 'P1'")[0]["price"] == 1.09


@pytest.mark.parametrize(("text", "expected"), [
    ("product_id,name,category,allergen\nP1,Milk,milk,milk\n", "field 'allergen'"),
    ("product_id,name\nP1,Milk\n", "field 'category'"),
    ("product_id,name,category\nP1,Milk,milk\nP1,Milk again,milk\n", "also on row 2"),
    ("product_id,name,category,temperature_zone\nP1,Milk,milk,warm\n",
     "field 'temperature_zone'"),
])
def test_catalog_mistakes_are_named(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "catalog.csv"
    path.write_text(text)
    with pytest.raises(MasterDataError, match=expected):
        _apply(tmp_path / "edge.db", "catalog", path, version=1)


def test_customers_cannot_share_a_loyalty_number(tmp_path: Path) -> None:
    db = tmp_path / "edge.db"
    path = tmp_path / "customers.jsonl"
    path.write_text(CUSTOMERS_JSONL)
    _apply(db, "customers", path, version=1)
    path.write_text(json.dumps({"customer_id": "C3", "loyalty_number": "4000000001"}) + "\n")
    with pytest.raises(MasterDataError, match="belongs to customer 'C1'"):
        _apply(db, "customers", path, version=2)


def test_an_older_record_never_replaces_a_newer_one(tmp_path: Path) -> None:
    db = tmp_path / "edge.db"
    path = tmp_path / "customers.jsonl"
    path.write_text(CUSTOMERS_JSONL)
    _apply(db, "customers", path, version=10)
    withdrawal = tmp_path / "consent.jsonl"
    withdrawal.write_text('{"customer_id": "C1", "consent_personalization": false}\n')
    assert _apply(db, "consent", withdrawal, version=20).applied == 1
    # The customer file of version 15 arrives late (a downlink message retried).
    result = _apply(db, "customers", path, version=15, batch_id="late")
    assert (result.stale, result.applied) == (1, 1)  # C1 is newer here; C2 was not
    assert count(db, "SELECT consent_personalization FROM customers WHERE customer_id='C1'") == 0


def _apply(db_path: Path, kind: str, path: Path, *, version: int,
           batch_id: str | None = None):  # type: ignore[no-untyped-def]
    db = open_database(db_path)
    try:
        return apply_records(db.conn, kind, read_records(path), version=version,
                             batch_id=batch_id or f"{kind}-{version}")
    finally:
        db.close()


def test_erasure_removes_the_shopper_and_keeps_their_sales_anonymous(tmp_path: Path) -> None:
    db_path = tmp_path / "edge.db"
    open_database(db_path).close()
    seed_catalog(db_path)
    db = open_database(db_path)
    writer = EventWriter(db, store_id=STORE, max_payload_bytes=65536,
                         dead_letter_max_raw_bytes=4096)
    who = "C-WEEKLY"
    events = [pos_event(customer_id=who), pos_event(customer_id="C-VEGAN"),
              presence_event(customer_id=who), interaction_event(customer_id=who)]
    writer.write_batch([RawMessage(TOPIC_BY_TYPE[e["type"]], orjson.dumps(e)) for e in events]
                       + [RawMessage(TOPIC_BY_TYPE["presence"],
                                     orjson.dumps({"customer_id": who, "broken": True}))])
    assert count(db_path, "SELECT count(*) FROM shopper_features WHERE customer_id = ?",
                 who) == 1
    path = tmp_path / "erasure.csv"
    path.write_text(f"customer_id\n{who}\n")
    db.close()

    assert run_import(db_path, "erasure", path).returncode == 0
    for table in ("customers", "shopper_features", "presence", "interactions",
                  "transactions"):
        assert count(db_path, f"SELECT count(*) FROM {table} WHERE customer_id = ?", who) == 0
    assert count(db_path, "SELECT count(*) FROM transactions") == 2  # still counted
    assert count(db_path, "SELECT count(*) FROM transactions WHERE customer_id IS NULL") == 1
    assert count(db_path, "SELECT count(*) FROM events WHERE instr(body, ?) > 0", who) == 0
    assert count(db_path, "SELECT count(*) FROM events WHERE instr(body, 'C-VEGAN') > 0") == 1
    assert count(db_path, "SELECT count(*) FROM dead_letters") == 0
    assert count(db_path, "SELECT count(*) FROM customers WHERE customer_id = 'C-VEGAN'") == 1
