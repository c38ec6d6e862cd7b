"""One bundle's models, built from its verified bytes and ready to answer requests."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge_agent.features.shopper import SaleLine, ShopperFeatures
from edge_agent.shoppers.recommend import Ranker
from models.bundle import BundleError, VerifiedBundle
from models.nbr.serve import NbrServingModel
from models.nbr.train import ONNX_FILE as RANKER_FILE
from models.segments.serving import SegmentAssigner
from models.timing.serving import TimingPredictor

DAY_S = 86400.0
# The smoke shopper: three weekly sales of two categories, a realistic minimal history.
_SMOKE_SALES = 3
_SMOKE_NOW_S = 1.8e9


class SmokeTestFailed(BundleError):
    """A bundle verified, but its models give no sane answer on a known shopper."""


@dataclass(frozen=True)
class LoadedModels:
    version: str
    name: str
    manifest: dict[str, Any] = field(repr=False)
    timing: TimingPredictor | None = field(repr=False)
    segments: SegmentAssigner | None = field(repr=False)
    loaded_at: str = ""
    ranker: Ranker | None = field(default=None, repr=False)
    source: Path | None = None  # where the bundle was loaded from

    @classmethod
    def from_bundle(cls, bundle: VerifiedBundle, loaded_at: str,
                    source: Path | None = None) -> LoadedModels:
        """Build every model the bundle carries; raises BundleError if one is incompatible."""
        files = set(bundle.files)
        timing = TimingPredictor.from_bundle(bundle) if "timing.onnx" in files else None
        segments = SegmentAssigner.from_bundle(bundle) if "segments.onnx" in files else None
        ranker = NbrServingModel.from_bundle(bundle) if RANKER_FILE in files else None
        if timing is None and segments is None and ranker is None:
            raise SmokeTestFailed(f"bundle {bundle.version} carries no model this agent serves")
        return cls(bundle.version, bundle.name, bundle.manifest, timing, segments, loaded_at,
                   ranker, source)

    @property
    def model_names(self) -> list[str]:
        return [name for name, model in (("nbr", self.ranker), ("timing", self.timing),
                                         ("segments", self.segments)) if model is not None]

    def smoke_test(self) -> None:
        """Run every model on a known shopper; refuse the bundle unless answers are sane."""
        shopper = ShopperFeatures()
        for week in range(_SMOKE_SALES):
            shopper.apply_sale(_SMOKE_NOW_S - (_SMOKE_SALES - week) * 7 * DAY_S,
                               [SaleLine("smoke-milk", "milk", 1.0),
                                SaleLine("smoke-bread", "bread", 1.0)], 5.0)
        try:
            if self.timing is not None:
                pairs = [(state, name) for name, state in shopper.categories.items()]
                for prediction in self.timing.predict(pairs, shopper.trips, _SMOKE_NOW_S):
                    values = [v for v in vars(prediction).values() if isinstance(v, float)]
                    if not values or not all(math.isfinite(v) for v in values):
                        raise SmokeTestFailed(f"timing model gave {prediction}")
            if self.segments is not None:
                (segment,) = self.segments.assign([shopper.trips], _SMOKE_NOW_S)
                if not segment:
                    raise SmokeTestFailed("segment model gave no segment")
            if self.ranker is not None:
                ranked = self.ranker.recommend(shopper.baskets, _SMOKE_NOW_S, k=5)
                if not ranked or not all(math.isfinite(score) for _, score in ranked):
                    raise SmokeTestFailed(f"ranker gave {ranked}")
        except SmokeTestFailed:
            raise
        except Exception as exc:  # any crash of a model on a normal shopper refuses it
            raise SmokeTestFailed(f"a model failed on the smoke shopper: {exc}") from exc
