"""`cloud-sync analyze` on a Parquet file of lake rows, with the local double (and, for the
fleet, a moto server of its own for the batch files), and without credentials."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cloud_sync.cli import main
from cloud_sync.lake.schema import EVENT_SCHEMA
from tests.analysis.conftest import CATALOG, sale, shopper

SHOPPERS = 100  # Bedrock's batch minimum: the fleet run goes through a batch job


@pytest.fixture
def lake(tmp_path: Path) -> list[str]:
    now = datetime.now(UTC)
    rows = [sale(f"c{i}", now - timedelta(days=d), {"p-milk": 1, "p-bread": 1})
            for i in range(SHOPPERS) for d in (2, 9, 16, 23)]
    table = pa.Table.from_pylist([{**r, "event_id": str(i)} for i, r in enumerate(rows)],
                                 schema=EVENT_SCHEMA)
    pq.write_table(table, tmp_path / "lake.parquet")
    catalog = tmp_path / "catalog.csv"
    catalog.write_text("product_id,category\n" + "".join(f"{p},{c}\n"
                                                         for p, c in CATALOG.items()))
    return ["--parquet", str(tmp_path / "lake.parquet"), "--catalog", str(catalog)]


def test_analyze_shopper_fleet_score_and_ab(lake: list[str], tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    state = ["--state-dir", str(tmp_path / "state")]
    assert main(["analyze", "shopper", shopper("c1"), *lake, *state, "--double"]) == 0
    assert json.loads(capsys.readouterr().out)["producer"] == "bedrock"

    assert main(["analyze", "fleet", *lake, *state, "--double"]) == 0
    fleet = json.loads(capsys.readouterr().out)
    # c1 is unchanged since its analysis a moment ago: 99 go in the batch, under 100 ->
    # on demand, and the report says so.
    assert fleet["reused"] == 1 and fleet["jobs"] == []
    assert "under Bedrock's batch minimum" in next(iter(fleet["on_demand"].values()))

    fresh = ["--state-dir", str(tmp_path / "fresh")]
    assert main(["analyze", "fleet", *lake, *fresh, "--double"]) == 0
    fleet = json.loads(capsys.readouterr().out)
    [job] = fleet["jobs"]
    assert job["status"] == "Completed" and job["succeeded"] == SHOPPERS
    assert fleet["counts"] == {"bedrock/batch": SHOPPERS} and fleet["dollars"] > 0

    assert main(["analyze", "score", *lake, *fresh, "--json", str(tmp_path / "s.json")]) == 0
    out = capsys.readouterr().out
    assert "0 predictions newly scored" in out  # every prediction is after the lake's end
    assert json.loads((tmp_path / "s.json").read_text())["pending"] == 2 * SHOPPERS

    assert main(["analyze", "ab", *fresh]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["winner"] == "A" and "fewer than 30" in report["reason"]


def test_without_credentials_the_fleet_gets_the_fallback(
        lake: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["analyze", "fleet", *lake, "--state-dir", str(tmp_path / "s"),
                 "--batch-bucket", "b", "--role-arn", "arn:aws:iam::1:role/r"]) == 0
    assert json.loads(capsys.readouterr().out)["counts"] == {
        "fallback/not configured": SHOPPERS}
    assert main(["analyze", "shopper", "0" * 32, *lake]) == 2
    assert "no sales of shopper" in capsys.readouterr().err
