"""Serves what the bundle folder says: at start-up the recorded version (a restart serves
what was served), and later a newer bundle dropped into the folder by an operator.

Which bundle is newest is decided by its signed version, never by file times; a version
rolled back from is never picked up again by the watcher (only by an explicit load).
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

from edge_agent.features.shopper import ShopperFeatures
from edge_agent.features.store import smoke_shoppers
from edge_agent.modeling.library import BundleLibrary
from edge_agent.modeling.registry import BundleRefused, ModelRegistry, SwapListener
from edge_agent.periodic import PeriodicTask
from edge_agent.settings import Settings
from models.bundle import BundleError
from models.bundle.version import version_key

logger = logging.getLogger(__name__)
# Recent and long-history shoppers each (so up to twice this many) in a smoke test.
SMOKE_SHOPPERS = 10


def open_library(settings: Settings) -> BundleLibrary | None:
    """The store's bundle folder, or None when no fleet public key is configured."""
    if settings.model_public_key is None:
        return None
    trusted = [settings.model_public_key] + (
        [settings.model_store_key] if settings.model_store_key is not None else [])
    return BundleLibrary(settings.bundle_folder, trusted,
                         budget_bytes=int(settings.model_bundle_budget_mb * 1024 * 1024))


def make_registry(settings: Settings, on_swap: SwapListener | None = None) -> ModelRegistry:
    """The registry of one serving process: its bundle folder, and this store's recent
    shoppers as the smoke test's realistic inputs."""

    def recent_shoppers() -> list[ShopperFeatures]:
        if not Path(settings.db).exists():
            return []
        conn = sqlite3.connect(f"file:{settings.db}?mode=ro", uri=True, timeout=5)
        try:
            return smoke_shoppers(conn, SMOKE_SHOPPERS)
        except sqlite3.Error as exc:  # a store without its tables yet: synthetic ones only
            logger.warning("smoke test without the store's shoppers: %s", exc)
            return []
        finally:
            conn.close()

    return ModelRegistry(open_library(settings), on_swap=on_swap, smoke_shoppers=recent_shoppers,
                         smoke_budget_s=settings.model_smoke_budget_ms / 1000)


class BundleWatcher:
    def __init__(self, registry: ModelRegistry, library: BundleLibrary,
                 interval_s: float) -> None:
        self._registry = registry
        self._library = library
        self._tried: set[tuple[str, float, int]] = set()
        self._task = PeriodicTask("bundle-watcher", self.check_once, interval_s)

    def start(self) -> None:
        self._task.start()

    def stop(self) -> None:
        self._task.stop()

    def check_once(self) -> None:
        """Follow the record (another worker may have moved on), then offer each bundle
        dropped since the last look (each file version once)."""
        self._registry.follow()
        for drop in self._library.drops():
            try:
                info = drop.stat()
            except OSError:
                continue
            key = (drop.name, info.st_mtime, info.st_size)
            if key not in self._tried:
                self._tried.add(key)
                self.offer(drop)

    def offer(self, source: Path) -> None:
        """Install `source`, and serve it if it is newer than what is served and was never
        rolled back from. Refusals are logged; what is served stays."""
        try:
            version = self._library.install(source).version
        except (BundleError, OSError) as exc:
            logger.error("bundle %s refused: %s", source.name, exc)
            return
        current = self._registry.current
        if version in self._registry.rolled_back() or (
                current is not None and version_key(version) <= version_key(current.version)):
            return
        try:
            self._registry.serve_version(version)
        except BundleRefused as exc:
            logger.error("%s", exc)


def start_models(settings: Settings, registry: ModelRegistry) -> BundleWatcher | None:
    """Serve the recorded version (a restart serves what was served), else the configured
    `model_bundle`; then watch the bundle folder. A refusal is logged; the process serves
    without models and is not ready."""
    library = registry.library
    if library is None:
        if settings.model_bundle is not None:
            logger.error("model_bundle is set but model_public_key is not: serving without "
                         "personalized models")
        return None
    watcher = BundleWatcher(registry, library, settings.model_watch_interval_s)
    registry.follow()
    if settings.model_bundle is not None:
        watcher.offer(Path(settings.model_bundle))
    watcher.check_once()
    watcher.start()
    return watcher
