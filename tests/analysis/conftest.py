"""Fixtures of the analysis tests: a catalog, lake rows of known shoppers, the local Bedrock
double on a free port, and analysts pointed at it with real boto3 (dummy credentials); for
batch inference, moto's server (real HTTP S3) and a double reading and writing it."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from cloud_sync.analysis.bedrock import Analyst
from cloud_sync.analysis.cost import CostSettings
from cloud_sync.analysis.settings import AnalysisSettings, BedrockSettings
from cloud_sync.analysis.summary import ShopperSummary, summarize_lake
from cloud_sync.link.privacy import pseudonymize
from cloud_sync.local.bedrock_double import BedrockDouble
from cloud_sync.local.moto_server import MotoServer

KEY = b"k" * 32
NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)  # a Monday
CATALOG = {"p-milk": "Milk", "p-bread": "Bread", "p-apple": "Fruit & Vegetables",
           "p-coffee": "Coffee", "p-pizza": "Frozen Meals", "p-nappies": "Baby Care"}
TAXONOMY = frozenset(CATALOG.values())
PRICES = {"p-milk": 1.2, "p-bread": 2.0, "p-apple": 0.5, "p-coffee": 6.0, "p-pizza": 4.0,
          "p-nappies": 12.0}


def shopper(customer: str) -> str:
    return pseudonymize(KEY, customer)


def sale(customer: str | None, when: datetime, lines: dict[str, float],
         store: str = "s1") -> dict[str, Any]:
    return {"store_id": store, "type": "pos.transaction", "ts": when,
            "transaction_id": f"t-{customer}-{when.isoformat()}",
            "customer_id": shopper(customer) if customer else None,
            "items": [{"product_id": p, "quantity": q, "unit_price": PRICES.get(p, 1.0),
                       "discount": 0.0} for p, q in lines.items()]}


def weekly_rows(customer: str, weeks: int = 8, *, last_days_ago: float = 2.0
                ) -> list[dict[str, Any]]:
    """A shopper who buys milk and bread every week and coffee every other week, on the same
    weekday at 10:00; the last visit `last_days_ago` days before NOW."""
    last = (NOW - timedelta(days=last_days_ago)).replace(hour=10)
    rows = []
    for week in range(weeks):
        lines = {"p-milk": 2.0, "p-bread": 1.0}
        if week % 2 == 0:
            lines["p-coffee"] = 1.0
        rows.append(sale(customer, last - timedelta(weeks=weeks - 1 - week), lines))
    return rows


@pytest.fixture(autouse=True)
def no_real_aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test may find real AWS credentials, nor wait on the instance metadata service."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture
def double() -> Iterator[BedrockDouble]:
    with BedrockDouble(slow_s=3.0) as d:
        yield d


@pytest.fixture
def summaries() -> dict[str, ShopperSummary]:
    rows = weekly_rows("alice") + weekly_rows("bob", 5, last_days_ago=30.0)
    rows.append(sale(None, NOW - timedelta(days=1), {"p-milk": 1.0}))  # anonymous: skipped
    return summarize_lake(rows, CATALOG, now=NOW)


MakeAnalyst = Callable[..., Analyst]


@pytest.fixture
def make_analyst(double: BedrockDouble, tmp_path: Path) -> MakeAnalyst:
    def make(*, budget_usd: float = 10.0, local: bool = True, **bedrock: Any) -> Analyst:
        options: dict[str, Any] = {
            "max_attempts": 3, "connect_timeout_s": 1.0, "read_timeout_s": 1.0,
            "breaker_threshold": 3, "breaker_cooldown_s": 60.0, **bedrock}
        if local:  # the double unless the test names another endpoint
            options = {"endpoint_url": double.endpoint_url, "access_key_id": "testing",
                       "secret_access_key": "testing", **options}
        settings = AnalysisSettings(bedrock=BedrockSettings(**options),
                                    costs=CostSettings(daily_budget_usd=budget_usd),
                                    state_dir=tmp_path / "state")
        return Analyst(settings, TAXONOMY)
    return make


@pytest.fixture(scope="session")
def moto() -> Iterator[MotoServer]:
    """moto's server (real HTTP S3), once for the session: each test uses its own bucket."""
    with MotoServer() as server:
        yield server


@pytest.fixture
def batch_bucket(moto: MotoServer, request: pytest.FixtureRequest) -> str:
    name = "batch-" + "".join(c for c in request.node.name.lower() if c.isalnum())[:40]
    moto.boto3_client("s3").create_bucket(
        Bucket=name, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    return name


@pytest.fixture
def batch_double(moto: MotoServer) -> Iterator[BedrockDouble]:
    """A double that also answers the batch job API, reading and writing moto's S3."""
    with BedrockDouble(s3_endpoint_url=moto.endpoint_url, batch_step_s=0.01) as d:
        yield d


def many(summary: ShopperSummary, n: int, prefix: str = "s") -> list[ShopperSummary]:
    """`n` shoppers with `summary`'s history, each its own pseudonym."""
    return [summary.model_copy(update={"shopper_id": shopper(f"{prefix}{i}")})
            for i in range(n)]
