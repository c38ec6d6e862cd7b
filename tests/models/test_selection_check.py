"""The tuning check: which users a baseline's setting is chosen on, judged on test users."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from models.evaluation import selection_check
from tests.models.test_evaluation_run import write_csv


def test_choices_ignore_test_users_and_the_ceiling_bounds_them(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    data = tmp_path / "shop.csv"
    write_csv(data)
    out = tmp_path / "check.json"
    assert selection_check.main(["--dataset", f"csv:{data}", "--configs", "6", "--splits", "2",
                                 "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["configs"] == 6 and len(report["per_split"]) == 2
    for split in report["per_split"]:
        ceiling = split["best on test"]["score"]
        assert all(split[c]["score"] <= ceiling for c in selection_check.CHOOSERS)
    printed = capsys.readouterr().out
    assert "tuning view" in printed and "validation users" in printed

    # The choices never depend on test targets: hide every test user's basket.
    real = selection_check.split_trials

    def blind_test(method, task, split, configs):
        trials = real(method, task, split, configs)
        for trial in trials:
            trial["test"] = {**trial["test"], "score": 0.0}
        return trials
    monkeypatch.setattr(selection_check, "split_trials", blind_test)
    again = selection_check.check(f"csv:{data}", "tifu-knn", 6, 2)
    for before, after in zip(report["per_split"], again["per_split"], strict=True):
        for chooser in ("validation users", "tuning view"):
            assert before[chooser]["params"] == after[chooser]["params"]
