"""Train and sign a model bundle from this store's own history: what the cloud does for the
fleet, done locally for the demo and the benchmarks.

The ranker and the segments learn from the store's baskets. The timing model's time-based
split takes the last 210 days of history for its 90-day horizon and 60-day test and
validation periods, and trains on what comes before: more history than the demo's or the
benchmark's store has. So it learns from a longer history of the same simulated shoppers
on the same taxonomy (`simulated_history`): the demo's and the benchmark's shoppers are
the simulator's, so the model learns their rhythm (generic generated baskets, used
before, predicted a 3-day bread habit as due in 5 days).
"""

from __future__ import annotations

import json
import logging
import shutil
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from edge_agent.export import export_baskets
from edge_agent.features.shopper import STATE_VERSION

if TYPE_CHECKING:
    from models.datasets.base import BasketDataset

logger = logging.getLogger(__name__)
TRAINED_MARKER = "trained.json"
# What a finished training is valid for: the feature code, and this module's recipe
# (bump it when what the store trains on changes, so cached models are retrained).
STORE_TRAINING_VERSION = "4"
TRAINED_FOR = f"{STATE_VERSION}|store-training:{STORE_TRAINING_VERSION}"
# The timing model's history: 400 days (210 for the split's horizon, test and validation,
# the rest for training) of 300 shoppers, about 270k line items; generated in 4 s, trained
# in about a minute on one core.
TIMING_HISTORY_DAYS = 400
TIMING_HISTORY_SHOPPERS = 300
# A store's own history trains a timing model only with this many days to train on, besides
# the split's horizon, test and validation windows (210 days).
TIMING_MIN_TRAIN_DAYS = 90


def timing_min_history_days() -> float:
    """History the timing model needs: its split's horizon, test and validation windows,
    and at least as long again to train on."""
    from models.timing.evaluate import TimingSplit

    split = TimingSplit()
    return split.horizon_days + split.test_days + split.val_days + TIMING_MIN_TRAIN_DAYS


def train_store_models(db_path: Path, models_dir: Path, seed: int = 0, *,
                       timing_from: str = "simulated") -> Path:
    """Train into `models_dir` unless it already holds a finished training for this
    feature code (an upgrade that changed a feature schema retrains: the agent would refuse
    models trained for the old one).

    `timing_from`: "simulated" (the demo and the benchmarks: the simulator's shoppers over a
    longer history, see the module docstring) or "store" (a real store: its own history,
    when it is long enough — timing_min_history_days() — and no timing model otherwise:
    the bundle then serves recommendations and segments, and the shopping list waits)."""
    from models.datasets.csv import load_csv
    from models.training import train_ranker, train_segments, train_timing

    if timing_from not in ("simulated", "store"):
        raise ValueError(f"timing_from must be 'simulated' or 'store', not {timing_from!r}")
    if trained_for_this_code(models_dir, timing_from):
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
    summary: dict[str, object] = {"nbr": train_ranker(history, models_dir),
                                  "segments": train_segments(history, models_dir)}
    if timing_from == "simulated":
        summary["timing"] = train_timing(simulated_history(seed), models_dir)
    else:
        days = history_days(history)
        if days >= timing_min_history_days():
            summary["timing"] = train_timing(history, models_dir)
        else:
            why = (f"{days:.0f} days of history; the timing model needs"
                   f" {timing_min_history_days():.0f}")
            summary["timing"] = {"skipped": why}
            logger.warning("no timing model: %s", why)
    (models_dir / TRAINED_MARKER).write_text(json.dumps(
        {"trained_for": _trained_for(timing_from), "metrics": summary}, default=str))
    return models_dir


def history_days(history: BasketDataset) -> float:
    ts = history.ts[~np.isnan(history.ts)]
    return float(ts.max() - ts.min()) / 86_400 if len(ts) else 0.0


def _trained_for(timing_from: str) -> str:
    return TRAINED_FOR if timing_from == "simulated" else f"{TRAINED_FOR}|timing:store"


def simulated_history(seed: int = 0, shoppers: int = TIMING_HISTORY_SHOPPERS,
                      days: int = TIMING_HISTORY_DAYS) -> BasketDataset:
    """`days` of the store simulator's purchase history for `shoppers` generated shoppers,
    as a basket dataset with the taxonomy's categories."""
    from edge_agent.demo.catalog import generate_catalog
    from edge_agent.demo.shoppers import generate_shoppers
    from edge_agent.simulator.history import generate_history
    from models.datasets.base import build_dataset

    catalog = generate_catalog(seed)
    category = {product.product_id: product.category for product in catalog}
    people = generate_shoppers(catalog, shoppers, seed)
    users, baskets, items, ts, categories, quantities, paid = ([] for _ in range(7))
    for sale, _register in generate_history(catalog, people, store_id="timing-history",
                                            days=days, seed=seed):
        for line in sale.items:
            users.append(sale.customer_id)
            baskets.append(sale.transaction_id)
            items.append(line.product_id)
            ts.append(sale.ts.timestamp())
            categories.append(category[line.product_id])
            quantities.append(line.quantity)
            paid.append(line.quantity * line.unit_price - line.discount)
    return build_dataset("simulated-history", users, baskets, items, np.array(ts),
                         categories, np.array(quantities, np.float32),
                         np.array(paid, np.float32))


def trained_for_this_code(models_dir: Path, timing_from: str = "simulated") -> bool:
    """Whether `models_dir` holds a finished training for the feature code running now."""
    marker = models_dir / TRAINED_MARKER
    try:
        return bool(json.loads(marker.read_text()).get("trained_for")
                    == _trained_for(timing_from))
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
