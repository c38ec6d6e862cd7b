"""The evaluate command end to end on a generated CSV (fast methods only)."""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import pytest

from models.datasets.synthetic import generate_baskets
from models.evaluation import run


def write_csv(path: Path) -> None:
    ds = generate_baskets(n_users=60, n_items=40, seed=5)
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["user_id", "basket_index", "timestamp", "item_id"])
        for u, b, t, i in zip(ds.user, ds.basket, ds.ts, ds.item, strict=True):
            w.writerow([ds.user_ids[u], int(b), int(t), ds.item_ids[i]])


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    run.add_arguments(parser)
    return parser.parse_args(argv)


def test_evaluate_csv_prints_table_and_writes_json(tmp_path: Path, capsys) -> None:
    data = tmp_path / "shop.csv"
    write_csv(data)
    out = tmp_path / "out" / "metrics.json"
    args = parse(["--dataset", f"csv:{data}", "--json", str(out),
                  "--methods", "g-topfreq,gp-topfreq,tifu-knn", "--splits", "2"])
    assert run.main(args) == 0
    printed = capsys.readouterr().out
    assert "| GP-TopFreq |" in printed and "| TIFU-KNN |" in printed
    report = json.loads(out.read_text())
    assert set(report["methods"]) == {"G-TopFreq", "GP-TopFreq", "TIFU-KNN"}
    tifu = report["methods"]["TIFU-KNN"]
    assert len(tifu["per_split"]) == 2
    assert 0.0 <= tifu["mean"]["recall@10"] <= 1.0 and "explore_recall@20" in tifu["mean"]
    assert report["protocol"]["split_source"].startswith("seeds")


@pytest.mark.parametrize("spec", ["nope", "csv:", "completejourney:x"])
def test_unknown_dataset_spec_is_an_error(spec: str) -> None:
    assert run.main(parse(["--dataset", spec])) == 2


def test_unknown_method_is_an_error(tmp_path: Path) -> None:
    assert run.main(parse(["--dataset", "tafeng", "--methods", "magic"])) == 2


def test_tafeng_dir_defaults_beside_the_checkout() -> None:
    from models.datasets.tafeng import default_tafeng_dir

    assert default_tafeng_dir().parts[-3:] == ("shared", "data", "tafeng")
