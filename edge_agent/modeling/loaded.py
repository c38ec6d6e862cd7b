"""One bundle's models, built from its verified bytes and ready to answer requests."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from edge_agent.features.shopper import SaleLine, ShopperFeatures
from edge_agent.shoppers.recommend import Ranker
from models.bundle import BundleError, VerifiedBundle

if TYPE_CHECKING:
    from models.segments.serving import SegmentAssigner
    from models.timing.serving import TimingPredictor

DAY_S = 86400.0
_SMOKE_SALES = 3
_SMOKE_NOW_S = 1.8e9
# The widest shopper: 40 baskets over 200 known items (real shoppers have ~100 candidates).
_LARGE_SHOPPER_ITEMS = 200
_LARGE_SHOPPER_BASKETS = 40
# Per model call on one shopper. Serving answers in a few ms; a model 25x slower than that
# would break the 200 ms promise under load, so it is refused before it is served.
DEFAULT_SMOKE_BUDGET_S = 0.25
# Features are computed on an HTTP worker's event loop (only the ONNX graphs run on a model
# thread): on the widest shopper they must stay within what `/healthz` may wait.
EVENT_LOOP_BUDGET_S = 0.05
# A model whose every timed smoke call took at most this much CPU runs on the event loop
# too; a slower one on a model thread, with a deadline (edge_agent/api/model_calls.py).
# Handing a fast graph to a thread and back costs more than the graph under load: the
# thread waits for the GIL the loop holds, then the loop for the answer (recommendations
# over 10 ms inside the worker: 13-14 % with the hop, 3-4 % without; benchmarks/README.md,
# Serving, session 11).
ON_LOOP_CPU_BUDGET_S = 0.005


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
    # The models fast enough for the event loop (`ON_LOOP_CPU_BUDGET_S`): set by the smoke
    # test, which the models must pass before they are served.
    on_loop: frozenset[str] = frozenset()

    @classmethod
    def from_bundle(cls, bundle: VerifiedBundle, loaded_at: str) -> LoadedModels:
        """Build every model the bundle carries; raises BundleError if one is incompatible."""
        # Imported here: the agent process of `run --workers N` holds a registry but loads
        # models only for a release's smoke test, and should not carry ONNX Runtime and
        # scipy (~50 MB) until then.
        from models.nbr.scoring import ONNX_FILE as RANKER_FILE
        from models.nbr.serve import NbrServingModel
        from models.segments.serving import SegmentAssigner
        from models.timing.serving import TimingPredictor

        files = set(bundle.files)
        timing = TimingPredictor.from_bundle(bundle) if "timing.onnx" in files else None
        segments = SegmentAssigner.from_bundle(bundle) if "segments.onnx" in files else None
        ranker = NbrServingModel.from_bundle(bundle) if RANKER_FILE in files else None
        if timing is None and segments is None and ranker is None:
            raise SmokeTestFailed(f"bundle {bundle.version} carries no model this agent serves")
        return cls(bundle.version, bundle.name, bundle.manifest, timing, segments, loaded_at,
                   ranker)

    @property
    def model_names(self) -> list[str]:
        return [name for name, model in (("nbr", self.ranker), ("timing", self.timing),
                                         ("segments", self.segments)) if model is not None]

    def smoke_test(self, shoppers: Sequence[ShopperFeatures] = (),
                   budget_s: float = DEFAULT_SMOKE_BUDGET_S) -> LoadedModels:
        """Run every model on known shoppers and refuse the bundle unless every answer is
        finite, each model call stays within `budget_s` and the features computed on the
        event loop within `EVENT_LOOP_BUDGET_S`: a minimal shopper, a shopper with the
        largest candidate set this model can produce, and `shoppers` (the store's recent
        ones). The first call warms the sessions up and is not timed. Returns these models
        with `on_loop` set: those whose every timed call fit `ON_LOOP_CPU_BUDGET_S`."""
        cpu: dict[str, float] = {}
        try:
            self._answer(_minimal_shopper(), budget_s=None, cpu={})
            for shopper in (_largest_shopper(self.ranker), *shoppers):
                self._answer(shopper, budget_s, cpu)
        except SmokeTestFailed:
            raise
        except Exception as exc:  # any crash of a model on a normal shopper refuses it
            raise SmokeTestFailed(f"a model failed on a smoke shopper: {exc}") from exc
        return replace(self, on_loop=frozenset(
            name for name, worst in cpu.items() if worst <= ON_LOOP_CPU_BUDGET_S))

    def on_loop_key(self, name: str) -> str | None:
        """What `ModelCalls.run` knows model `name` of this bundle by, if it may run on the
        event loop; None: on a model thread."""
        return f"{self.version}/{name}" if name in self.on_loop else None

    def _answer(self, shopper: ShopperFeatures, budget_s: float | None,
                cpu: dict[str, float]) -> None:
        last = shopper.trips.last_ts
        now = (last if math.isfinite(last) else _SMOKE_NOW_S) + DAY_S
        loop_budget_s = None if budget_s is None else EVENT_LOOP_BUDGET_S
        pairs = [(state, name) for name, state in shopper.categories.items()]
        if self.timing is not None and pairs:
            with _timed("timing features", loop_budget_s):
                x = self.timing.features(pairs, shopper.trips, now)
            with _timed("timing model", budget_s, cpu, "timing"):
                outputs = self.timing.score(x)
            predictions = self.timing.predictions_from(outputs)
            for prediction in predictions:
                values = [v for v in vars(prediction).values() if isinstance(v, float)]
                if not values or not all(math.isfinite(v) for v in values):
                    raise SmokeTestFailed(f"timing model gave {prediction}")
        if self.segments is not None:
            with _timed("segment model", budget_s):
                (segment,) = self.segments.assign([shopper.trips], now)
            if not segment:
                raise SmokeTestFailed("segment model gave no segment")
        if self.ranker is not None and shopper.baskets.n_baskets:
            with _timed("ranker features", loop_budget_s):
                items, x = self.ranker.candidates_of(shopper.baskets, now)
            with _timed("ranker", budget_s, cpu, "nbr"):
                scores = self.ranker.score(x)
            ranked = self.ranker.top(items, scores, k=10)
            if not ranked or not all(math.isfinite(score) for _, score in ranked):
                raise SmokeTestFailed(f"ranker gave non-finite or no scores: {ranked[:3]}")


@contextmanager
def _timed(what: str, budget_s: float | None, cpu: dict[str, float] | None = None,
           name: str = "") -> Iterator[None]:
    """Refuse the bundle if the block took longer than `budget_s`; note the most CPU it took
    under `cpu[name]` (this thread's CPU: ONNX Runtime runs a session's graph on the caller's
    thread, and CPU time, unlike the clock, does not grow on a busy machine)."""
    started, started_cpu = time.perf_counter(), time.thread_time()
    yield
    took = time.perf_counter() - started
    if cpu is not None:
        cpu[name] = max(cpu.get(name, 0.0), time.thread_time() - started_cpu)
    if budget_s is not None and took > budget_s:
        raise SmokeTestFailed(f"{what} took {took * 1000:.0f} ms on a smoke shopper "
                              f"(budget {budget_s * 1000:.0f} ms)")


def _minimal_shopper() -> ShopperFeatures:
    """Three weekly sales of two categories: a realistic minimal history."""
    shopper = ShopperFeatures()
    for week in range(_SMOKE_SALES):
        shopper.apply_sale(_SMOKE_NOW_S - (_SMOKE_SALES - week) * 7 * DAY_S,
                           [SaleLine("smoke-milk", "milk", 1.0),
                            SaleLine("smoke-bread", "bread", 1.0)], 5.0)
    return shopper


def _largest_shopper(ranker: Ranker | None) -> ShopperFeatures:
    """A loyal shopper who has bought a wide range of what the model knows: every item
    bought is a candidate, so this is at least the largest candidate set of a real one."""
    items = list(getattr(ranker, "item_ids", []))[:_LARGE_SHOPPER_ITEMS] or [
        f"smoke-{n}" for n in range(_LARGE_SHOPPER_ITEMS)]
    categories = getattr(ranker, "categories_of", None)
    shopper = ShopperFeatures()
    per_basket = max(1, len(items) // _LARGE_SHOPPER_BASKETS * 2)
    for basket in range(_LARGE_SHOPPER_BASKETS):
        chosen = [items[(basket * per_basket // 2 + n) % len(items)] for n in range(per_basket)]
        names = (categories(chosen) if categories else None) or []
        lines = [SaleLine(pid, names[n] if n < len(names) else f"cat-{n % 20}", 1.0)
                 for n, pid in enumerate(chosen)]
        shopper.apply_sale(_SMOKE_NOW_S - (_LARGE_SHOPPER_BASKETS - basket) * 3 * DAY_S,
                           lines, 10.0 * len(lines))
    return shopper
