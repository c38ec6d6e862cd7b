"""Loads a new bundle when one appears in the watched directory (how the cloud's rollout
job, or an operator, hands the agent a new model version)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from edge_agent.modeling.registry import BundleRefused, ModelRegistry
from edge_agent.periodic import PeriodicTask
from edge_agent.settings import Settings

logger = logging.getLogger(__name__)


def bundle_candidates(directory: Path) -> list[Path]:
    """Bundles in `directory` (sub-directories with a manifest, or .tar.gz), oldest first."""
    if not directory.is_dir():
        return []
    found = [p for p in directory.iterdir()
             if (p.is_dir() and (p / "manifest.json").is_file())
             or p.name.endswith((".tar.gz", ".tgz"))]
    return sorted(found, key=lambda p: (p.stat().st_mtime, p.name))


class BundleWatcher:
    def __init__(self, registry: ModelRegistry, directory: Path, interval_s: float,
                 on_loaded: Callable[[], None] | None = None) -> None:
        self._registry = registry
        self._directory = directory
        # Told of each bundle this watcher loads while running (with HTTP workers: so the
        # other workers serve it too, whichever of them saw it first).
        self._on_loaded = on_loaded
        self._tried: set[tuple[str, float]] = set()
        self._task = PeriodicTask("bundle-watcher", self.check_once, interval_s)

    def start(self) -> None:
        self._task.start()

    def stop(self) -> None:
        self._task.stop()

    def check_once(self, announce: bool = True) -> None:
        """Try the newest bundle not tried before (each version of a path is tried once).
        At start-up (`announce=False`) a load is not announced: a worker that restarts must
        not pull the others back to what the directory held before an admin's choice."""
        candidates = bundle_candidates(self._directory)
        if not candidates:
            return
        newest = candidates[-1]
        key = (str(newest), newest.stat().st_mtime)
        if key in self._tried:
            return
        self._tried.add(key)
        try:
            self._registry.load(newest)
        except BundleRefused as exc:
            logger.error("%s", exc)  # the current models stay; the refusal is logged
            return
        if announce and self._on_loaded is not None:
            self._on_loaded()


def start_models(settings: Settings, registry: ModelRegistry,
                 on_new_bundle: Callable[[], None] | None = None) -> BundleWatcher | None:
    """Load the configured bundle (a refusal is logged; the process serves without models and
    is not ready), and watch the bundle directory for new ones."""
    if settings.model_bundle is not None:
        try:
            registry.load(settings.model_bundle)
        except BundleRefused as exc:
            logger.error("%s: serving without personalized models", exc)
    if settings.model_bundle_dir is None:
        return None
    watcher = BundleWatcher(registry, settings.model_bundle_dir, settings.model_watch_interval_s,
                            on_loaded=on_new_bundle)
    watcher.check_once(announce=False)
    watcher.start()
    return watcher
