"""The registry of the models being served: verified, smoke-tested, swapped atomically.

A request reads `registry.current` once and uses that object throughout, so a swap in the
middle of a request can never show it half of one model and half of another.

Versions only move forward, unless a rollback is asked for explicitly: an older bundle is
refused, so an old file in the bundle folder (or a replayed job) cannot undo a release.
What is served is recorded in the bundle folder (`BundleLibrary.record`): every HTTP
worker follows that record, and a restart serves what was served before it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from edge_agent.features.shopper import ShopperFeatures
from edge_agent.modeling.library import BundleLibrary, ServingRecord
from edge_agent.modeling.loaded import DEFAULT_SMOKE_BUDGET_S, LoadedModels
from models.bundle import BundleError, VerifiedBundle
from models.bundle.version import version_key
from models.events import format_ts, utc_now

logger = logging.getLogger(__name__)


class BundleRefused(Exception):
    """A bundle was not served; the models being served are unchanged."""

    def __init__(self, source: str, reason: str) -> None:
        super().__init__(f"bundle {source} refused: {reason}")
        self.source = source
        self.reason = reason


# Told of every swap: (the models served until now, the models served from now).
SwapListener = Callable[[LoadedModels | None, LoadedModels], None]
# The store's recent shoppers, for the smoke test (realistic inputs, not only synthetic).
SmokeShoppers = Callable[[], Sequence[ShopperFeatures]]


class ModelRegistry:
    def __init__(self, library: BundleLibrary | None, on_swap: SwapListener | None = None,
                 smoke_shoppers: SmokeShoppers | None = None,
                 smoke_budget_s: float = DEFAULT_SMOKE_BUDGET_S) -> None:
        self.library = library
        self._on_swap = on_swap
        self._smoke_shoppers = smoke_shoppers
        self._smoke_budget_s = smoke_budget_s
        self._lock = threading.Lock()  # one install, swap or rollback at a time
        self._refused_to_follow: str | None = None
        self.current: LoadedModels | None = None
        self.previous: LoadedModels | None = None

    def _library(self, source: str) -> BundleLibrary:
        if self.library is None:
            raise BundleRefused(source, "no fleet public key configured (model_public_key)")
        return self.library

    # -- what changes the served version ----------------------------------------------------
    def load(self, path: Path, *, rollback: bool = False) -> LoadedModels:
        """Install the bundle at `path` into the bundle folder, then serve it. An older
        version than the one served is refused unless `rollback`."""
        library = self._library(Path(path).name)
        with self._lock:
            try:
                bundle = library.install(Path(path))
            except BundleError as exc:
                logger.error("refused model bundle %s: %s", Path(path).name, exc)
                raise BundleRefused(Path(path).name, f"{type(exc).__name__}: {exc}") from exc
            return self._serve(bundle, rollback=rollback)

    def serve_version(self, version: str, *, rollback: bool = False) -> LoadedModels:
        """Serve an installed version (a rollback job names the version to go back to)."""
        library = self._library(version)
        with self._lock:
            try:
                bundle = library.open(version)
            except BundleError as exc:
                raise BundleRefused(version, f"{type(exc).__name__}: {exc}") from exc
            return self._serve(bundle, rollback=rollback)

    def rollback(self) -> LoadedModels:
        """Serve the version served before this one again."""
        record = self.library.serving() if self.library is not None else None
        previous = self.previous.version if self.previous is not None else (
            record.previous if record is not None else None)
        if previous is None:
            raise LookupError("no previous model version to roll back to")
        return self.serve_version(previous, rollback=True)

    def _serve(self, bundle: VerifiedBundle, *, rollback: bool) -> LoadedModels:
        current = self.current
        if current is not None and bundle.version == current.version:
            return current
        if (current is not None and not rollback
                and version_key(bundle.version) <= version_key(current.version)):
            raise BundleRefused(bundle.version, f"version {bundle.version} is not newer than "
                                f"the served {current.version} (a rollback must be explicit)")
        candidate = self._build(bundle)
        self._swap(candidate)
        assert self.library is not None
        before = self.library.serving()
        rolled_back = before.rolled_back if before is not None else ()
        if rollback and current is not None:
            rolled_back = (*rolled_back, current.version)
        self.library.record(ServingRecord(candidate.version,
                                          current.version if current else None, rolled_back))
        self.library.prune(keep={candidate.version} | ({current.version} if current else set()))
        return candidate

    def _build(self, bundle: VerifiedBundle) -> LoadedModels:
        try:
            candidate = LoadedModels.from_bundle(bundle, loaded_at=format_ts(utc_now()))
            shoppers = self._smoke_shoppers() if self._smoke_shoppers is not None else ()
            candidate = candidate.smoke_test(shoppers, self._smoke_budget_s)
        except (BundleError, OSError, ValueError) as exc:
            logger.error("refused model bundle %s: %s", bundle.version, exc)
            raise BundleRefused(bundle.version, f"{type(exc).__name__}: {exc}") from exc
        return candidate

    def _swap(self, candidate: LoadedModels) -> None:
        self.previous, self.current = self.current, candidate
        if self._on_swap is not None:
            self._on_swap(self.previous, candidate)
        logger.info("serving models %s (was %s)", candidate.version,
                    self.previous.version if self.previous else "none")

    # -- following the record ---------------------------------------------------------------
    def follow(self) -> None:
        """Serve what the bundle folder's record names, if that is not served here yet (a
        restart, or another worker's swap). A refusal is logged once per version."""
        if self.library is None:
            return
        record = self.library.serving()
        if record is None or record.version == self._refused_to_follow:
            return
        if self.current is not None and self.current.version == record.version:
            return
        with self._lock:
            try:
                bundle = self.library.open(record.version)
                self._swap(self._build(bundle))
            except (BundleError, BundleRefused) as exc:
                logger.error("cannot serve the recorded version %s: %s", record.version, exc)
                self._refused_to_follow = record.version

    def rolled_back(self) -> tuple[str, ...]:
        record = self.library.serving() if self.library is not None else None
        return record.rolled_back if record is not None else ()
