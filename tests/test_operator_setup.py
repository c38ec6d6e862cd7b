"""From an empty database to a store answering personal recommendations, using only the
documented commands, as a store's operator would: import the chain's catalog and customers,
run the agent, let the tills' sales come in over MQTT, train and sign the store's bundle,
and see the agent load it and answer with it."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from edge_agent.broker import MosquittoBroker, free_port, wait_for_port
from edge_agent.demo.catalog import generate_catalog
from edge_agent.demo.seed import customer_row, product_row
from edge_agent.demo.shoppers import Shopper, generate_shoppers
from store_layouts.catalog import LAYOUT_DIR
from tests.ingestion.conftest import count, stop_agent_process, wait_until

STORE = "store-new"
SHOPPERS = 120
HISTORY_DAYS = 35
KIOSK_KEY = "kiosk-key-for-the-setup-test"


def cli(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([sys.executable, "-m", "edge_agent.cli", *args], capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr[-2000:]
    return done


def write_chain_exports(folder: Path) -> tuple[Path, Path, list[Shopper]]:
    """The chain's master data as its back office would export it (CSV and JSON lines)."""
    catalog = generate_catalog(0)
    shoppers = generate_shoppers(catalog, SHOPPERS, 0)
    catalog_csv = folder / "catalog.csv"
    with catalog_csv.open("w", newline="") as handle:
        rows = [product_row(p) for p in catalog]
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        for row in rows:
            writer.writerow({**row, "allergens": ";".join(row["allergens"]),
                             "diets": ";".join(row["diets"])})
    customers = folder / "customers.jsonl"
    customers.write_text("".join(json.dumps(customer_row(s)) + "\n" for s in shoppers))
    return catalog_csv, customers, shoppers


@pytest.fixture
def agent_process(mosquitto_broker: MosquittoBroker, tmp_path: Path
                  ) -> Iterator[tuple[str, Path, Path, list[Shopper]]]:
    db = tmp_path / "edge.db"
    # The chain's fleet key (its releases) and the store's own (its own training): both
    # trusted, each signing what it signs.
    keys, fleet_keys = tmp_path / "keys", tmp_path / "fleet-keys"
    for folder in (keys, fleet_keys):
        subprocess.run([sys.executable, "-m", "models", "keygen", "--out", str(folder)],
                       check=True, capture_output=True, timeout=60)
    incoming = tmp_path / "bundles"
    incoming.mkdir()
    catalog_csv, customers, shoppers = write_chain_exports(tmp_path)
    cli("import", "catalog", str(catalog_csv), "--db", str(db))
    cli("import", "customers", str(customers), "--db", str(db))
    # This store is a small one: its own floor plan, not the shipped supermarket default.
    cli("import", "layout", str(LAYOUT_DIR / "convenience.json"), "--db", str(db))
    port = free_port()
    env = {**os.environ, "EDGE_MODEL_PUBLIC_KEY": str(fleet_keys / "bundle_signing_key.pub.pem"),
           "EDGE_MODEL_STORE_KEY": str(keys / "bundle_signing_key.pub.pem"),
           "EDGE_MODEL_BUNDLE_DIR": str(incoming), "EDGE_MODEL_WATCH_INTERVAL_S": "0.5",
           "EDGE_API_KEYS": json.dumps([{"name": "kiosk", "role": "kiosk", "key": KIOSK_KEY}])}
    process = subprocess.Popen(
        [sys.executable, "-m", "edge_agent.cli", "run", "--store-id", STORE, "--broker",
         mosquitto_broker.url, "--db", str(db), "--port", str(port), "--log-level", "WARNING"],
        env=env, stdin=subprocess.DEVNULL)
    try:
        assert wait_for_port("127.0.0.1", port, timeout=60), "the agent did not listen"
        yield f"http://127.0.0.1:{port}", db, keys, shoppers
    finally:
        stop_agent_process(process)


@pytest.mark.slow
def test_an_empty_store_becomes_a_personalizing_one_with_documented_commands(
        agent_process: tuple[str, Path, Path, list[Shopper]],
        mosquitto_broker: MosquittoBroker, tmp_path: Path) -> None:
    url, db, keys, shoppers = agent_process
    ready = httpx.get(url + "/readyz", timeout=10).json()
    assert ready["ready"] and not ready["checks"]["models"]  # ready, on store favourites
    floor = httpx.get(url + "/v1/store/map", headers={"X-API-Key": KIOSK_KEY}, timeout=10)
    assert floor.json()["layout_id"] == "convenience"

    # The tills: five weeks of sales for the same shoppers, over MQTT.
    cli("simulate", "--store-id", STORE, "--broker", mosquitto_broker.url, "--shoppers",
        str(SHOPPERS), "--history-days", str(HISTORY_DAYS), "--rate", "50", "--duration", "1")
    wait_until(lambda: count(db, "SELECT count(*) FROM transactions") > 500, timeout=60,
               what="the history stored")

    done = cli("train", "--db", str(db), "--store-id", STORE, "--key",
               str(keys / "bundle_signing_key.pem"), "--out", str(tmp_path / "bundles" / "b1"))
    assert "bundle" in done.stdout and "nbr" in done.stdout
    assert "no purchase-timing model" in done.stdout  # five weeks are too few for it

    card = next(s.loyalty_number for s in shoppers if s.consent_personalization)
    # As the kiosk does: the card's number gives the opaque id every shopper answer takes.
    shopper = httpx.get(f"{url}/v1/shoppers/lookup", params={"loyalty_number": card},
                        headers={"X-API-Key": KIOSK_KEY}, timeout=10).json()["customer_id"]

    def personal() -> bool:
        answer = httpx.get(f"{url}/v1/shoppers/{shopper}/recommendations",
                           headers={"X-API-Key": KIOSK_KEY}, timeout=10).json()
        return bool(answer.get("personalized"))

    wait_until(personal, timeout=60, what="personal recommendations from the store's bundle")
    assert httpx.get(url + "/readyz", timeout=10).json()["checks"]["models"] is True


def test_a_broken_layout_file_is_refused_and_the_imported_one_stays(tmp_path: Path) -> None:
    db = tmp_path / "edge.db"
    cli("import", "layout", str(LAYOUT_DIR / "convenience.json"), "--db", str(db))
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps({**json.loads((LAYOUT_DIR / "convenience.json").read_text()),
                                  "format": "something else"}))
    done = subprocess.run([sys.executable, "-m", "edge_agent.cli", "import", "layout",
                           str(broken), "--db", str(db)], capture_output=True, text=True,
                          timeout=60, stdin=subprocess.DEVNULL)
    assert done.returncode == 1 and "'format'" in done.stderr and "nothing changed" in done.stderr
    imported = json.loads((tmp_path / "store-layout.json").read_text())
    assert imported["format"] != "something else"
