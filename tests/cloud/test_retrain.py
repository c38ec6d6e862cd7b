"""`cloud-sync retrain` against a real local cloud (moto S3) and a real Dask LocalCluster:
generated store history written to the lake, retrained chain-wide and per store, gated
against the champion, signed; a candidate trained on corrupted history is refused."""

from __future__ import annotations

import json
import os
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from cloud_sync.cli import main
from cloud_sync.lake.store import Lake
from cloud_sync.local.stack import LAKE_BUCKET, LocalCloud
from cloud_sync.retrain import synthetic
from cloud_sync.retrain.evaluate import Scores
from cloud_sync.retrain.gate import judge
from cloud_sync.retrain.run import EXIT_REFUSED, next_version
from models.bundle import generate_keypair, verify_bundle
from models.bundle.keys import load_public_key
from tests.cloud.conftest import unique_store

END = datetime(2026, 12, 1, tzinfo=UTC)
UPLOADS = "instore-candidates"
# Small stores, so a run takes seconds: thresholds scaled down with them.
SMALL = ["--holdout-weeks", "4", "--min-store-shoppers", "50", "--min-heldout-shoppers", "50",
         "--workers", "2"]
# The gate's tests judge the chain's candidate: no store gets its own (saves their training).
CHAIN_ONLY = [*SMALL, "--min-store-shoppers", "100000"]


@dataclass(frozen=True)
class Chain:
    cloud_dir: Path
    clean: tuple[str, str]  # two clean stores, 120 active shoppers each
    small: str  # too few shoppers for its own model
    corrupt: str  # lapsed shoppers' last baskets replaced by products they never bought
    key: Path
    public_key: Path
    catalog: Path


@pytest.fixture(scope="module")
def chain(local_cloud: LocalCloud, tmp_path_factory: pytest.TempPathFactory) -> Chain:
    lake = Lake(local_cloud.boto3_client("s3"), LAKE_BUCKET)
    stores = [unique_store("retrain") for _ in range(4)]
    # Visits every 1 to 5 days: the same baskets in half the days (and lake partitions).
    pace = 0.5
    synthetic.write_store(lake, stores[0], END, active=120, lapsed=50, pace=pace, seed=1)
    synthetic.write_store(lake, stores[1], END, active=120, lapsed=50, pace=pace, seed=2)
    synthetic.write_store(lake, stores[2], END, active=20, pace=pace, seed=3)
    # 240 active shoppers: ~200 held out, enough to tell the corrupted candidate from the
    # champion (with 120, ~100 held out, the ranker's neighbour features made it only
    # -0.014 / -0.023 worse, inside the noise). 1,200 corrupted lapsed shoppers: the ranker
    # reads each shopper's own repeat habit, so it partly explains the corruption away as
    # those shoppers' taste; with 400 (8 history shifts) it came out only -0.008 / -0.015
    # worse, at the edge of the noise.
    synthetic.write_store(lake, stores[3], END, active=240, lapsed=1200, corrupt_lapsed=True,
                          pace=pace, seed=4)
    s3 = local_cloud.boto3_client("s3")
    s3.create_bucket(Bucket=UPLOADS, CreateBucketConfiguration={
        "LocationConstraint": local_cloud.region})
    keys = tmp_path_factory.mktemp("keys")
    private, public = generate_keypair(keys)
    catalog = keys / "catalog.csv"
    catalog.write_text("product_id,name,category\n" + "".join(
        f"{p},{p},{c}\n" for p, c in synthetic.catalog().items()))
    return Chain(local_cloud.directory, (stores[0], stores[1]), stores[2], stores[3], private,
                 public, catalog)


@pytest.fixture(scope="module")
def first_release(chain: Chain, tmp_path_factory: pytest.TempPathFactory
                  ) -> Iterator[tuple[int, Path, dict]]:
    out = tmp_path_factory.mktemp("first")
    report = out / "report.json"
    code = main(["retrain", "--local", str(chain.cloud_dir), "--key", str(chain.key),
                 "--out", str(out / "bundles"), "--stores", *chain.clean, chain.small,
                 "--catalog", str(chain.catalog), "--upload", UPLOADS, "--json", str(report),
                 *SMALL])
    yield code, out / "bundles", json.loads(report.read_text())


def test_first_release_signed_bundle_with_the_gate_in_its_manifest(
        chain: Chain, first_release: tuple[int, Path, dict], local_cloud: LocalCloud) -> None:
    code, out, report = first_release
    assert code == 0, report["reason"]
    version = report["version"]
    bundle = verify_bundle(out / version / "bundle.tar.gz", load_public_key(chain.public_key))
    assert bundle.version == version
    gate = bundle.manifest["metrics"]["gate"]
    assert gate["verdict"] == "pass" and gate["champion"] is None
    assert "first release" in gate["reason"]
    assert gate["heldout_shoppers"] >= 200 and gate["candidate"]["recall@10"] > 0.3
    assert {"nbr_ranker.onnx", "segments.onnx"} <= set(bundle.files)
    # The upload is the same bytes, under candidates/<version>/.
    s3 = local_cloud.boto3_client("s3")
    body = s3.get_object(Bucket=UPLOADS, Key=f"candidates/{version}/bundle.tar.gz")["Body"]
    assert body.read() == (out / version / "bundle.tar.gz").read_bytes()


def test_stores_with_enough_history_get_their_own_bundle(
        chain: Chain, first_release: tuple[int, Path, dict]) -> None:
    _code, out, report = first_release
    version = report["version"]
    for store in chain.clean:
        assert report["scopes"][store]["status"] == "trained"
        path = out / version / "stores" / store / "bundle.tar.gz"
        manifest = verify_bundle(path, load_public_key(chain.public_key)).manifest
        assert manifest["metrics"]["gate"]["scope"] == store
        assert manifest["training_data"]["has_categories"]  # the catalog was used
    assert report["scopes"][chain.small]["status"] == "skipped"
    assert "chain model serves it" in report["scopes"][chain.small]["why"]
    assert not (out / version / "stores" / chain.small).exists()


def test_the_fan_out_runs_in_dask_worker_processes(first_release: tuple[int, Path, dict]
                                                   ) -> None:
    _code, _out, report = first_release
    assert report["dask"] == {"scheduler": "LocalCluster", "workers": 2}
    pids = {scope["worker_pid"] for scope in report["scopes"].values()}
    assert os.getpid() not in pids
    assert len(pids) == 2  # four tasks shared by both workers


def test_a_candidate_as_good_as_the_champion_passes_with_the_comparison(
        chain: Chain, first_release: tuple[int, Path, dict], tmp_path: Path) -> None:
    _code, _out, first = first_release
    champion = f"s3://{UPLOADS}/candidates/{first['version']}/bundle.tar.gz"
    report = tmp_path / "report.json"
    code = main(["retrain", "--local", str(chain.cloud_dir), "--key", str(chain.key),
                 "--out", str(tmp_path), "--stores", *chain.clean, "--champion", champion,
                 "--catalog", str(chain.catalog), "--json", str(report), *CHAIN_ONLY])
    doc = json.loads(report.read_text())
    assert code == 0, doc["reason"]
    assert doc["version"] > first["version"]  # monotonic
    manifest = verify_bundle(tmp_path / doc["version"] / "bundle.tar.gz",
                             load_public_key(chain.public_key)).manifest
    gate = manifest["metrics"]["gate"]
    assert gate["verdict"] == "pass" and gate["champion"] == first["version"]
    for metric in ("recall@10", "ndcg@10"):
        comparison = gate["comparisons"][metric]
        low, high = comparison["ci"]
        assert low <= comparison["difference"] <= high and high >= 0
        assert not comparison["worse_beyond_noise"]
    assert gate["comparisons"]["timing_mae_days"]["compared"] is False  # no timing model
    assert doc["scopes"]["chain"]["gate"] == gate


def test_a_candidate_trained_on_corrupted_history_is_refused(
        chain: Chain, first_release: tuple[int, Path, dict], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    _code, out, first = first_release
    report = tmp_path / "report.json"
    code = main(["retrain", "--local", str(chain.cloud_dir), "--key", str(chain.key),
                 "--out", str(tmp_path / "bundles"), "--stores", chain.corrupt,
                 "--champion", str(out / first["version"] / "bundle.tar.gz"),
                 "--catalog", str(chain.catalog), "--json", str(report), *CHAIN_ONLY])
    assert code == EXIT_REFUSED
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "refused" in err[0]
    doc = json.loads(report.read_text())
    gate = doc["scopes"]["chain"]["gate"]
    assert gate["verdict"] == "refuse" and doc["version"] is None
    worse = [m for m in ("recall@10", "ndcg@10") if gate["comparisons"][m]["worse_beyond_noise"]]
    assert worse  # measured: R@10 -0.021 [-0.044, -0.002], NDCG@10 -0.017 [-0.033, -0.004]
    for metric in worse:
        assert gate["comparisons"][metric]["ci"][1] < 0 and metric in err[0]
    assert not (tmp_path / "bundles").exists() or not any((tmp_path / "bundles").iterdir())


# -- the gate's rule on its own (no training) ----------------------------------------------

def scores(n: int = 400, recall: float = 0.5, mae: float | None = 5.0,
           coverage: float | None = 0.8, seed: int = 0) -> Scores:
    rng = np.random.default_rng(seed)
    return Scores(
        recall=np.clip(rng.normal(recall, 0.2, n), 0, 1),
        ndcg=np.clip(rng.normal(recall, 0.2, n), 0, 1),
        timing_abs_error=None if mae is None else np.abs(rng.normal(mae, 2.0, n)),
        timing_covered=None if coverage is None else (rng.random(n) < coverage).astype(float))


@pytest.mark.parametrize(("candidate", "refused_on"), [
    (scores(seed=1), None),
    (scores(recall=0.4, seed=1), "recall@10"),
    (scores(mae=7.0, seed=1), "timing_mae_days"),
    (scores(coverage=0.5, seed=1), "timing_coverage_80"),
    (scores(mae=None, coverage=None, seed=1), "timing_mae_days"),
])
def test_the_gate_refuses_only_what_is_worse_beyond_noise(candidate: Scores,
                                                          refused_on: str | None) -> None:
    verdict = judge(candidate, scores(), champion_version="2026.11.01.000000",
                    heldout_shoppers=400, min_heldout_shoppers=200)
    assert verdict.passed == (refused_on is None), verdict.reason
    if refused_on:
        assert refused_on in verdict.reason


def test_the_gate_refuses_too_few_shoppers_and_passes_a_first_release() -> None:
    few = judge(scores(n=50), scores(n=50), champion_version="v", heldout_shoppers=50,
                min_heldout_shoppers=200)
    assert not few.passed and "only 50 held-out shoppers" in few.reason
    assert judge(scores(n=5), None, champion_version=None, heldout_shoppers=5,
                 min_heldout_shoppers=200).passed


def test_versions_are_utc_time_and_always_after_the_champion() -> None:
    now = datetime(2026, 12, 6, 7, 30, 5, 123, tzinfo=UTC)
    assert next_version(None, now) == "2026.12.06.073005"
    assert next_version("2026.12.06.080000", now) == "2026.12.06.080001"
    assert next_version("not-a-time", now) == "2026.12.06.073005"


def test_bundle_archive_lists_only_bundle_files(first_release: tuple[int, Path, dict]) -> None:
    _code, out, report = first_release
    with tarfile.open(out / report["version"] / "bundle.tar.gz") as tar:
        names = set(tar.getnames())
    assert "train_summary.json" not in names and "manifest.json" in names



def test_errors_before_any_training_are_one_line_exit_2(
        chain: Chain, first_release: tuple[int, Path, dict], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    _code, out, first = first_release
    base = ["retrain", "--local", str(chain.cloud_dir), "--out", str(tmp_path / "out")]
    other_private, _other_public = generate_keypair(tmp_path / "other")
    cases = {
        "no lake partitions": [*base, "--key", str(chain.key), "--stores", "no-such-store"],
        "not a readable PEM private key": [*base, "--key", str(chain.public_key)],
        # The champion was signed by the chain's key, not this one's public half.
        "SignatureError": [*base, "--key", str(other_private),
                           "--champion", str(out / first["version"] / "bundle.tar.gz")],
    }
    for expected, argv in cases.items():
        assert main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and expected in err[0], err
    assert not (tmp_path / "out").exists()
