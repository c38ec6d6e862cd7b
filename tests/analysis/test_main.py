"""`python -m cloud_sync.analysis` on a Parquet file of lake rows: with the double, and
without credentials (the fallback, saying so)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cloud_sync.analysis.__main__ import main
from cloud_sync.lake.schema import EVENT_SCHEMA
from tests.analysis.conftest import CATALOG, sale, shopper


@pytest.fixture
def lake_file(tmp_path: Path) -> tuple[Path, Path]:
    now = datetime.now(UTC)
    rows = [sale(who, now - timedelta(days=d), {"p-milk": 1, "p-bread": 1})
            for who in ("alice", "bob") for d in (2, 9, 16, 23)]
    table = pa.Table.from_pylist([{**r, "event_id": str(i)} for i, r in enumerate(rows)],
                                 schema=EVENT_SCHEMA)
    pq.write_table(table, tmp_path / "lake.parquet")
    catalog = tmp_path / "catalog.csv"
    catalog.write_text("product_id,category\n" + "".join(f"{p},{c}\n"
                                                         for p, c in CATALOG.items()))
    return tmp_path / "lake.parquet", catalog


def test_one_shopper_with_the_double_and_all_without_credentials(
        lake_file: tuple[Path, Path], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    lake, catalog = lake_file
    common = ["--parquet", str(lake), "--catalog", str(catalog)]
    assert main([*common, "--shopper", shopper("alice"), "--double",
                 "--state-dir", str(tmp_path / "a")]) == 0
    [line] = capsys.readouterr().out.splitlines()
    assert json.loads(line)["producer"] == "bedrock"
    assert main([*common, "--all", "--state-dir", str(tmp_path / "b")]) == 0
    results = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert {r["shopper_id"] for r in results} == {shopper("alice"), shopper("bob")}
    assert {r["fallback_reason"] for r in results} == {"not configured"}
    assert main([*common, "--shopper", "0" * 32]) == 2
    assert "no sales of shopper" in capsys.readouterr().err
