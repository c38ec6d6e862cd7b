"""An agent serving HTTP through TestClient (lifespan running) on a real broker and database,
filled through the real ingestion path."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from edge_agent.api.app import create_app
from edge_agent.broker import MosquittoBroker
from edge_agent.settings import load_settings
from tests.ingestion.conftest import STORE, Publisher, count, pos_event, wait_until
from tests.model_bundles import Bundles
from tests.shopper_ids import device_shopper_id

KEYS = {"display": "display-key-0123456789", "kiosk": "kiosk-key-0123456789",
        "staff": "staff-key-0123456789", "admin": "admin-key-0123456789"}


@dataclass
class Store:
    client: TestClient
    publisher: Publisher
    db_path: Path
    broker: MosquittoBroker
    bundles: Bundles

    def get(self, path: str, role: str | None = "kiosk", **params: object):
        headers = {"X-API-Key": KEYS[role]} if role else {}
        return self.client.get(path, headers=headers, params=params)

    def post(self, path: str, body: object, role: str | None = "kiosk"):
        headers = {"X-API-Key": KEYS[role]} if role else {}
        return self.client.post(path, headers=headers, json=body)

    def shopper(self, customer_id: str) -> str:
        """The opaque id devices know this customer by (what a loyalty-number lookup
        returns)."""
        return device_shopper_id(self.db_path, customer_id)

    def get_shopper(self, customer_id: str, what: str, role: str | None = "kiosk",
                    **params: object):
        """GET /v1/shoppers/{their opaque id}/{what}, as a device that looked them up."""
        return self.get(f"/v1/shoppers/{self.shopper(customer_id)}/{what}", role, **params)

    def get_insights(self, customer_id: str, role: str | None = "staff"):
        """GET /v1/staff/shoppers/{their opaque id}/insights."""
        return self.get(f"/v1/staff/shoppers/{self.shopper(customer_id)}/insights", role)

    @property
    def bundle_folder(self) -> Path:
        return self.db_path.parent / "bundles"

    def drop(self, bundle: Path, name: str | None = None) -> str:
        """Copy `bundle` into the store's bundle folder (where the admin API loads from,
        and the watcher looks); returns its name there."""
        return drop_bundle(bundle, self.bundle_folder, name)


def drop_bundle(bundle: Path, folder: Path, name: str | None = None) -> str:
    """Copy a bundle into `folder` whole: staged beside it, then renamed (as an operator's
    copy should be, so a watcher never sees half of one)."""
    name = name or bundle.name
    staged = folder / f".{name}.copying"
    if bundle.is_dir():
        shutil.copytree(bundle, staged)
    else:
        shutil.copyfile(bundle, staged)
    staged.rename(folder / name)
    return name


@pytest.fixture
def store(mqtt_broker: MosquittoBroker, tmp_path: Path, bundles: Bundles) -> Iterator[Store]:
    db_path = tmp_path / "edge.db"
    settings = load_settings(
        store_id=STORE, broker=mqtt_broker.url, db=db_path, batch_max_wait_ms=5,
        mqtt_protocol=mqtt_broker.mqtt_protocol, model_public_key=bundles.public_key,
        model_bundle=bundles.v1,
        api_keys=[{"name": f"test-{role}", "role": role, "key": key}
                  for role, key in KEYS.items()])
    app = create_app(settings)
    with TestClient(app) as client:
        agent = app.state.serving.agent
        wait_until(lambda: agent.ingestion.connected, what="agent connected")
        publisher = Publisher(mqtt_broker.host, mqtt_broker.port, mqtt_broker.mqtt_protocol)
        try:
            yield Store(client, publisher, db_path, mqtt_broker, bundles)
        finally:
            publisher.close()


PRODUCTS = [
    {"product_id": "MILK", "name": "Whole milk 1 l", "category": "milk", "price": 1.1,
     "allergens": '["milk"]', "diets": '["vegetarian", "gluten_free"]'},
    {"product_id": "OAT", "name": "Oat drink 1 l", "category": "plant milk", "price": 1.9,
     "allergens": "[]", "diets": '["vegetarian", "vegan", "lactose_free"]'},
    {"product_id": "BREAD", "name": "Sourdough loaf", "category": "bread", "price": 2.5,
     "allergens": '["gluten"]', "diets": '["vegetarian", "vegan"]'},
    {"product_id": "SOAP", "name": "Laundry liquid", "category": "laundry", "price": 6.0,
     "allergens": "[]", "diets": '["vegan"]'},
]
SHOPPERS = [
    {"customer_id": "C-WEEKLY", "loyalty_number": "1000000001", "household_size": 2,
     "consent_personalization": 1, "consent_staff_assist": 1},
    {"customer_id": "C-PRIVATE", "loyalty_number": "1000000002", "household_size": 1,
     "consent_personalization": 0, "consent_staff_assist": 0},
    {"customer_id": "C-VEGAN", "loyalty_number": "1000000003", "household_size": 1,
     "consent_personalization": 1, "consent_staff_assist": 0,
     "dietary_restrictions": '["vegan"]', "allergens": '["milk"]'},
    {"customer_id": "C-NEW", "loyalty_number": "1000000004", "household_size": 1,
     "consent_personalization": 1, "consent_staff_assist": 0,
     "dietary_restrictions": '["vegan"]', "allergens": '["milk"]'},
]


def seed_catalog(db_path: Path) -> None:
    """The catalog and loyalty members, as the store's back office would load them."""
    import sqlite_utils

    db = sqlite_utils.Database(db_path)
    db["products"].upsert_all(PRODUCTS, pk="product_id")
    db["customers"].upsert_all(SHOPPERS, pk="customer_id")
    db.close()


def days_ago(days: float) -> str:
    return (datetime.now(UTC) - timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")


def buy(store: Store, customer: str, age_days: float, *products: str) -> dict:
    event = pos_event(customer_id=customer, ts=days_ago(age_days),
                      items=[{"product_id": p, "quantity": 1, "unit_price": 2.0}
                             for p in products], total=2.0 * len(products))
    store.publisher.event(event)
    return event


@pytest.fixture
def weekly_shopper(store: Store) -> Store:
    """C-WEEKLY buys milk and bread every week (last a week ago), laundry monthly."""
    seed_catalog(store.db_path)
    sent = [buy(store, "C-WEEKLY", days, "MILK", "BREAD") for days in (28, 21, 14, 7)]
    sent += [buy(store, "C-WEEKLY", days, "SOAP") for days in (33, 3)]
    sent += [buy(store, "C-VEGAN", days, "MILK", "OAT") for days in (28, 21, 14, 7)]
    wait_until(lambda: count(store.db_path, "SELECT count(*) FROM events") == len(sent),
               what="the sales")
    return store
