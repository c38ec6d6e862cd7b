"""Train and sign a model bundle from this store's own history: what the cloud does for the
fleet, done locally for the demo and the benchmarks.

The ranker and the segments learn from the store's baskets. The timing model's time-based
split needs many months of history, more than a fresh store has, so until it has them the
timing model learns from generated long histories (its features — gaps, counts, trip
rhythm — carry no store-specific vocabulary).
"""

from __future__ import annotations

import json
import logging
import shutil
import sqlite3
from pathlib import Path

from edge_agent.export import export_baskets
from edge_agent.features.shopper import STATE_VERSION

logger = logging.getLogger(__name__)
# Generated shoppers with 40-50 baskets: inside the ranker's 3-50 range and long enough
# for the timing model's split.
GENERATED_BASKETS = (40, 50)
TRAINED_MARKER = "trained.json"


def train_store_models(db_path: Path, models_dir: Path, seed: int = 0) -> Path:
    """Train into `models_dir` unless it already holds a finished training for this
    feature code (an upgrade that changed a feature schema retrains: the agent would refuse
    models trained for the old one)."""
    from models.datasets.csv import load_csv
    from models.datasets.synthetic import generate_baskets
    from models.training import train_ranker, train_segments, train_timing

    if trained_for_this_code(models_dir):
        return models_dir
    if models_dir.exists():
        logger.info("models in %s are unfinished or for other feature code: retraining",
                    models_dir)
        shutil.rmtree(models_dir)
    models_dir.mkdir(parents=True, exist_ok=True)
    baskets_csv = models_dir / "baskets.csv"
    conn = sqlite3.connect(db_path)
    try:
        lines = export_baskets(conn, baskets_csv)
    finally:
        conn.close()
    logger.info("training on %d lines of this store's history", lines)
    history = load_csv(baskets_csv)
    low, high = GENERATED_BASKETS
    summary = {"nbr": train_ranker(history, models_dir),
               "segments": train_segments(history, models_dir),
               "timing": train_timing(generate_baskets(min_baskets=low, max_baskets=high,
                                                       seed=seed), models_dir)}
    (models_dir / TRAINED_MARKER).write_text(
        json.dumps({"feature_code": STATE_VERSION, "metrics": summary}, default=str))
    return models_dir


def trained_for_this_code(models_dir: Path) -> bool:
    """Whether `models_dir` holds a finished training for the feature code running now."""
    marker = models_dir / TRAINED_MARKER
    try:
        return bool(json.loads(marker.read_text()).get("feature_code") == STATE_VERSION)
    except (OSError, ValueError, AttributeError):
        return False


def sign_store_bundle(models_dir: Path, keys_dir: Path, out: Path, version: str
                      ) -> tuple[Path, Path]:
    """Sign the trained models as a bundle with this machine's key pair (made once)."""
    from models.bundle import build_bundle, generate_keypair, load_private_key
    from models.bundle.keys import PRIVATE_KEY_FILE, PUBLIC_KEY_FILE

    private_key, public_key = keys_dir / PRIVATE_KEY_FILE, keys_dir / PUBLIC_KEY_FILE
    if not private_key.exists():
        private_key, public_key = generate_keypair(keys_dir)
    if out.exists() and out.stat().st_mtime < (models_dir / TRAINED_MARKER).stat().st_mtime:
        # Signed before the models were retrained: a bundle of the old ones.
        if out.is_dir():
            shutil.rmtree(out)
        else:
            out.unlink()
    if not out.exists():
        build_bundle(models_dir, out, load_private_key(private_key), version=version)
    return out, public_key
