"""The registry of the models being served: atomic swaps, the previous version kept.

A request reads `registry.current` once and uses that object throughout, so a swap in the
middle of a request can never show it half of one model and half of another.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

from edge_agent.modeling.loaded import LoadedModels
from models.bundle import BundleError, verify_bundle
from models.bundle.keys import FleetPublicKey
from models.events import format_ts, utc_now

logger = logging.getLogger(__name__)


class BundleRefused(Exception):
    """A bundle was not loaded; the models being served are unchanged."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"bundle {path} refused: {reason}")
        self.path = path
        self.reason = reason


# Told of every swap: (the models served until now, the models served from now).
SwapListener = Callable[[LoadedModels | None, LoadedModels], None]


class ModelRegistry:
    def __init__(self, public_key: FleetPublicKey | Path | None,
                 on_swap: SwapListener | None = None) -> None:
        self._public_key = public_key
        self._on_swap = on_swap
        self._lock = threading.Lock()  # one load or rollback at a time
        self.current: LoadedModels | None = None
        self.previous: LoadedModels | None = None

    def load(self, path: Path) -> LoadedModels:
        """Verify, build, smoke-test, then swap in the bundle at `path`."""
        path = Path(path)
        if self._public_key is None:
            raise BundleRefused(path, "no fleet public key configured (model_public_key)")
        with self._lock:
            extract_dir = Path(tempfile.mkdtemp(prefix="edge-bundle-"))
            try:
                bundle = verify_bundle(path, self._public_key, extract_to=extract_dir)
                candidate = LoadedModels.from_bundle(bundle, loaded_at=format_ts(utc_now()),
                                                     source=path)
                candidate.smoke_test()
            except BundleError as exc:
                logger.error("refused model bundle %s: %s", path, exc)
                raise BundleRefused(path, f"{type(exc).__name__}: {exc}") from exc
            except (OSError, ValueError) as exc:
                logger.error("refused model bundle %s: %s", path, exc)
                raise BundleRefused(path, f"{type(exc).__name__}: {exc}") from exc
            finally:
                # Sessions were built from the verified bytes in memory; no file is reread.
                shutil.rmtree(extract_dir, ignore_errors=True)
            self.previous, self.current = self.current, candidate
            self._swapped(self.previous, candidate)
            logger.info("serving models %s (was %s)", candidate.version,
                        self.previous.version if self.previous else "none")
            return candidate

    def _swapped(self, old: LoadedModels | None, new: LoadedModels) -> None:
        if self._on_swap is not None:
            self._on_swap(old, new)

    def rollback(self) -> LoadedModels:
        with self._lock:
            if self.previous is None:
                raise LookupError("no previous model version to roll back to")
            self.current, self.previous = self.previous, self.current
            self._swapped(self.previous, self.current)
            logger.warning("rolled back to models %s", self.current.version)
            return self.current
