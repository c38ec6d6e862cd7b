"""``python -m models``: keygen → train → bundle → verify, and refusals as exit codes."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from models.cli import COMMANDS, EXIT_FAILED, EXIT_OK, main


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Keys and a trained models directory, made through the CLI once for the module."""
    root = tmp_path_factory.mktemp("cli")
    assert main(["keygen", "--out", str(root / "keys")]) == EXIT_OK
    code = main(["train", "--dataset", "synthetic:5", "--skip-ranker", "--out",
                 str(root / "models")])
    assert code == EXIT_OK
    return root


def _bundle(workdir: Path, out: Path, version: str = "2026.11.1") -> int:
    return main(["bundle", "--models", str(workdir / "models"), "--key",
                 str(workdir / "keys" / "bundle_signing_key.pem"), "--out", str(out),
                 "--version", version])


def _verify(workdir: Path, bundle: Path) -> int:
    return main(["verify", str(bundle), "--public-key",
                 str(workdir / "keys" / "bundle_signing_key.pub.pem")])


def test_train_writes_models_sidecars_and_summary(workdir: Path) -> None:
    models = workdir / "models"
    assert {p.name for p in models.iterdir()} >= {
        "timing.onnx", "timing.json", "segments.onnx", "segments.json", "train_summary.json"
    }
    summary = json.loads((models / "train_summary.json").read_text())
    assert summary["training_data"]["name"] == "synthetic-5"
    assert summary["metrics"]["timing"]["parity"]["mismatch_fraction"] == 0.0
    assert summary["metrics"]["segments"]["parity"]["label_agreement"] == 1.0


@pytest.mark.parametrize("suffix", ["dir", "bundle.tar.gz"])
def test_bundle_then_verify(
    workdir: Path, tmp_path: Path, suffix: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _bundle(workdir, tmp_path / suffix) == EXIT_OK
    assert _verify(workdir, tmp_path / suffix) == EXIT_OK
    out = capsys.readouterr().out
    assert "OK instore-models 2026.11.1" in out and "timing.onnx" in out


def test_verify_refuses_a_tampered_bundle(
    workdir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bundle = tmp_path / "b"
    assert _bundle(workdir, bundle) == EXIT_OK
    sidecar = bundle / "timing.json"
    sidecar.write_text(sidecar.read_text().replace('"timing"', '"timinG"', 1))
    assert _verify(workdir, bundle) == EXIT_FAILED
    assert "DigestMismatchError: timing.json" in capsys.readouterr().err


def test_verify_refuses_another_key(
    workdir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _bundle(workdir, tmp_path / "b") == EXIT_OK
    assert main(["keygen", "--out", str(tmp_path / "k2")]) == EXIT_OK
    code = main(["verify", str(tmp_path / "b"), "--public-key",
                 str(tmp_path / "k2" / "bundle_signing_key.pub.pem")])
    assert code == EXIT_FAILED
    assert "SignatureError" in capsys.readouterr().err


def test_unknown_dataset_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["timing-eval", "--dataset", "nosuch"]) == EXIT_FAILED
    assert "'nosuch'" in capsys.readouterr().err


def test_module_entry_point_lists_every_command() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "models", "--help"], capture_output=True, text=True, check=True
    )
    for command in COMMANDS:
        assert command in result.stdout


def test_edge_path_from_signed_bundle_to_predictions(workdir: Path, tmp_path: Path) -> None:
    """What the edge does: verify, load, feed incremental state, get answers."""
    from models.bundle import FeatureSchemaError, load_public_key, verify_bundle
    from models.features.segments import SECONDS_PER_DAY, ShopperState
    from models.features.timing import PairState
    from models.segments.serving import SegmentAssigner
    from models.timing.serving import TimingPredictor

    assert _bundle(workdir, tmp_path / "b.tar.gz") == EXIT_OK
    key = load_public_key(workdir / "keys" / "bundle_signing_key.pub.pem")
    bundle = verify_bundle(tmp_path / "b.tar.gz", key)
    timing = TimingPredictor.from_bundle(bundle)
    segments = SegmentAssigner.from_bundle(bundle)

    t0, day = 1_500_000_000.0, SECONDS_PER_DAY
    shopper, pair = ShopperState(), PairState()
    for k in range(12):  # buys category cat001 every 7 days
        shopper.add_trip(t0 + 7 * k * day, 40.0)
        pair.add_purchase(t0 + 7 * k * day, 1.0, shopper)
    now = pair.last_ts + 3 * day
    (soon,) = timing.predict([(pair, "cat001")], shopper, now)
    (unknown_category,) = timing.predict([(pair, "never-seen-category")], shopper, now)
    (just_bought,) = timing.predict([(pair, "cat001")], shopper, pair.last_ts + 0.2 * day)
    assert 0.0 <= soon.days_until < 10.0
    assert soon.low_days <= soon.days_until <= soon.high_days
    assert 0.0 <= just_bought.urgency < soon.urgency <= 1.0
    assert math.isfinite(unknown_category.days_until)
    assert segments.assign([shopper], now)[0] in {"champions", "loyal", "potential loyalists",
                                                  "occasional", "new"}

    sidecar = json.loads(bundle.read("timing.json"))
    sidecar["feature_schema_version"] = 999
    bundle.files["timing.json"] = json.dumps(sidecar).encode()
    with pytest.raises(FeatureSchemaError):
        TimingPredictor.from_bundle(bundle)


def test_every_command_of_this_page_is_documented() -> None:
    """docs/models-timing.md shows each command it owns (evaluate is documented with the
    next-basket evaluation)."""
    doc = (Path(__file__).parents[2] / "docs" / "models-timing.md").read_text()
    for command in set(COMMANDS) - {"evaluate"}:
        assert f"python -m models {command}" in doc, command


def test_train_on_a_csv_without_timestamps_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    csv = tmp_path / "baskets.csv"
    csv.write_text("user_id,basket_index,item_id,category\nu1,0,milk,dairy\nu1,1,milk,dairy\n")
    code = main(["train", "--dataset", f"csv:{csv}", "--skip-ranker", "--out",
                 str(tmp_path / "m")])
    assert code == EXIT_FAILED
    assert "TimingDataError" in capsys.readouterr().err
