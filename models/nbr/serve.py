"""Next-basket recommendations for one shopper from the artifacts (what the edge runs).

    model = NbrServingModel.load(artifact_dir)
    # on each POS transaction (state: models.features.nbr.ShopperState, persisted per shopper)
    state.update(product_ids, ts, categories=model.categories_of(product_ids))
    model.recommend(state, now=time.time(), k=10)  # -> [(product_id, score), ...]

No history is rescanned: the request reads the shopper's :class:`ShopperState`, the
shipped :class:`ItemStats` and the ONNX ranker.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models.bundle.verify import VerifiedBundle
from models.features.nbr import (
    FEATURE_SCHEMA_VERSION,
    ShopperState,
    candidate_features,
    candidate_scores,
)
from models.features.nbr_stats import ItemStats
from models.nbr.candidates import CandidateConfig, generate_candidates
from models.nbr.scoring import META_FILE, ONNX_FILE, STATS_FILE, OnnxRanker

logger = logging.getLogger(__name__)


class SchemaMismatchError(ValueError):
    """The artifacts were built for another feature schema than this code computes."""


@dataclass
class NbrServingModel:
    """ONNX ranker + item statistics + vocabulary, ready to score shoppers."""

    ranker: OnnxRanker
    stats: ItemStats
    item_ids: list[str]
    candidates: CandidateConfig
    category_names: list[str]

    def __post_init__(self) -> None:
        self.item_index = {pid: code for code, pid in enumerate(self.item_ids)}
        self.category_index = {name: code for code, name in enumerate(self.category_names)}

    def categories_of(self, product_ids: list[str]) -> list[str] | None:
        """Categories of a basket's known products (None when the model has none)."""
        if not self.category_names:
            return None
        codes = [self.item_index.get(str(p)) for p in product_ids]
        cats = (int(self.stats.item_category[c]) for c in codes if c is not None)
        return [self.category_names[c] for c in cats if c >= 0]

    @classmethod
    def load(cls, directory: str | Path) -> NbrServingModel:
        d = Path(directory)
        return cls._from_files(lambda name: (d / name).read_bytes())

    @classmethod
    def from_bundle(cls, bundle: VerifiedBundle) -> NbrServingModel:
        """From a verified bundle's checked bytes (nothing is reread from disk)."""
        return cls._from_files(bundle.read)

    @classmethod
    def _from_files(cls, read: Callable[[str], bytes]) -> NbrServingModel:
        meta = json.loads(read(META_FILE))
        if meta["feature_schema_version"] != FEATURE_SCHEMA_VERSION:
            raise SchemaMismatchError(
                f"artifacts use feature schema {meta['feature_schema_version']!r}, "
                f"this code computes {FEATURE_SCHEMA_VERSION!r}"
            )
        return cls(
            ranker=OnnxRanker(read(ONNX_FILE)),
            stats=ItemStats.load(io.BytesIO(read(STATS_FILE))),
            item_ids=list(meta["item_ids"]),
            candidates=CandidateConfig(**meta["candidates"]),
            category_names=list(meta.get("category_names", [])),
        )

    def recommend(self, state: ShopperState, now: float, k: int = 10) -> list[tuple[str, float]]:
        """Top-k (product id, score) for the shopper's next basket, best first."""
        items, x = self.candidates_of(state, now)
        return self.top(items, self.score(x), k)

    # `recommend` in its two halves, for a caller that runs the ONNX scoring elsewhere (the
    # edge: on a model thread, so a slow ranker cannot hold its event loop).
    def candidates_of(self, state: ShopperState, now: float) -> tuple[np.ndarray, np.ndarray]:
        """(candidate item codes, their feature rows) for the shopper."""
        table = state.to_table(self.item_index, self.category_index)
        cop = candidate_scores(table, self.stats)
        rows, items = generate_candidates(table, self.stats, cop, self.candidates)
        return items, candidate_features(table, rows, items, self.stats, now, cop)

    def score(self, features: np.ndarray) -> np.ndarray:
        """The ONNX ranker's score of each candidate's feature row."""
        return self.ranker.score(features)

    def top(self, items: np.ndarray, scores: np.ndarray, k: int) -> list[tuple[str, float]]:
        """The k best-scored candidates as (product id, score), ties by item code."""
        order = np.lexsort((items, -scores))[:k]
        return [(self.item_ids[int(items[i])], float(scores[i])) for i in order]
