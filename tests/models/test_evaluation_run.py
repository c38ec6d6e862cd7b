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
                  "--methods", "g-topfreq,gp-topfreq,tifu-knn-published", "--splits", "2"])
    assert run.main(args) == 0
    printed = capsys.readouterr().out
    assert "| GP-TopFreq |" in printed and "| TIFU-KNN (published) |" in printed
    report = json.loads(out.read_text())
    assert set(report["methods"]) == {"G-TopFreq", "GP-TopFreq", "TIFU-KNN (published)"}
    tifu = report["methods"]["TIFU-KNN (published)"]
    assert len(tifu["per_split"]) == 2
    assert 0.0 <= tifu["mean"]["recall@10"] <= 1.0 and "explore_recall@20" in tifu["mean"]
    assert report["protocol"]["split_source"].startswith("seeds")
    assert report["comparison"] == {}  # no ranker, nothing to compare


def test_evaluate_tunes_baselines_and_compares_the_ranker(tmp_path: Path, capsys) -> None:
    data = tmp_path / "shop.csv"
    write_csv(data)
    out = tmp_path / "metrics.json"
    argv = ["--dataset", f"csv:{data}", "--json", str(out), "--splits", "2",
            "--methods", "gp-topfreq,tifu-knn,up-cf,ranker,ranker-no-time",
            "--budget", "3", "--resamples", "100", "--tuning-cache", str(tmp_path / "cache")]
    assert run.main(parse(argv)) == 0
    report = json.loads(out.read_text())
    assert set(report["methods"]) == {
        "GP-TopFreq", "TIFU-KNN (tuned)", "UP-CF@r (tuned)", "Ranker", "Ranker (no visit time)",
    }
    for method in ("tifu-knn", "up-cf", "ranker"):  # the same budget, every split
        t = report["tuning"][method]
        assert t["budget"] == 3 and set(t["search_space"]) and len(t["per_split"]) == 2
        assert all(len(s["trials"]) == 3 and not s["cached"] for s in t["per_split"])
    for metric in ("recall@10", "ndcg@10"):
        entry = report["comparison"][metric]
        assert entry["best_baseline"] in report["methods"]
        for name in ("Ranker", "Ranker (no visit time)"):
            b = entry[name]
            assert b["ci"][0] <= b["difference"] <= b["ci"][1]
            assert len(b["per_split"]) == 2 and b["n_resamples"] == 100
            assert b["resampling"].startswith("users, clustered")
    printed = capsys.readouterr().out
    assert "per split R@10 / N@10" in printed and "paired bootstrap" in printed
    # A rerun (first split only, to stay quick) reads every tuning result from the cache.
    rerun = [a if a != "2" else "1" for a in argv]
    rerun[rerun.index("--methods") + 1] = "tifu-knn,up-cf,ranker"
    assert run.main(parse(rerun)) == 0
    again = json.loads(out.read_text())
    assert all(s["cached"] for m in ("tifu-knn", "up-cf", "ranker")
               for s in again["tuning"][m]["per_split"])
    for name in ("TIFU-KNN (tuned)", "UP-CF@r (tuned)", "Ranker"):
        assert again["methods"][name]["per_split"][0] == report["methods"][name]["per_split"][0]


@pytest.mark.parametrize("spec", ["nope", "csv:", "completejourney:x"])
def test_unknown_dataset_spec_is_an_error(spec: str) -> None:
    assert run.main(parse(["--dataset", spec])) == 2


def test_unknown_method_is_an_error(tmp_path: Path) -> None:
    assert run.main(parse(["--dataset", "tafeng", "--methods", "magic"])) == 2


def test_tafeng_dir_defaults_beside_the_checkout() -> None:
    from models.datasets.tafeng import default_tafeng_dir

    assert default_tafeng_dir().parts[-3:] == ("shared", "data", "tafeng")


def test_history_shifts_are_the_rankers_own_setting(tmp_path: Path) -> None:
    """`--history-shifts` reaches the ranker: another value is tuned afresh, not read from
    the cache of the first, and the report says which was used."""
    data = tmp_path / "shop.csv"
    write_csv(data)
    out = tmp_path / "metrics.json"

    def tuned(shifts: str) -> dict:
        argv = ["--dataset", f"csv:{data}", "--json", str(out), "--splits", "1",
                "--methods", "ranker", "--budget", "1", "--resamples", "10",
                "--tuning-cache", str(tmp_path / "cache"), "--history-shifts", shifts]
        assert run.main(parse(argv)) == 0
        return json.loads(out.read_text())["tuning"]["ranker"]

    first = tuned("0")
    assert first["history_shifts"] == 0 and not first["per_split"][0]["cached"]
    other = tuned("1")
    assert other["history_shifts"] == 1 and not other["per_split"][0]["cached"]
    assert tuned("0")["per_split"][0]["cached"]


def test_unweighted_ranker_is_tuned_apart_and_reported(tmp_path: Path) -> None:
    """`--unweighted-ranker` (the comparison run) reaches the ranker: tuned afresh, not
    read from the weighted ranker's cache, and the report says which was used."""
    data = tmp_path / "shop.csv"
    write_csv(data)
    out = tmp_path / "metrics.json"

    def tuned(*extra: str) -> dict:
        argv = ["--dataset", f"csv:{data}", "--json", str(out), "--splits", "1",
                "--methods", "ranker", "--budget", "1", "--resamples", "10",
                "--tuning-cache", str(tmp_path / "cache"), "--history-shifts", "0", *extra]
        assert run.main(parse(argv)) == 0
        return json.loads(out.read_text())["tuning"]["ranker"]

    weighted = tuned()
    assert weighted["basket_weights"] is True
    unweighted = tuned("--unweighted-ranker")
    assert unweighted["basket_weights"] is False and not unweighted["per_split"][0]["cached"]
    assert unweighted["per_split"][0]["best_val"] != weighted["per_split"][0]["best_val"]
