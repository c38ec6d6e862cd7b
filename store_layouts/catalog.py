"""The layouts shipped with the package, loaded by name, and layout files loaded by path."""

from __future__ import annotations

import functools
import logging
from pathlib import Path

from store_layouts.errors import LayoutError
from store_layouts.model import Layout
from store_layouts.parse import load_layout_file

logger = logging.getLogger(__name__)

LAYOUT_DIR = Path(__file__).parent / "layouts"
# The layout the demo store uses when no layout is configured.
DEFAULT_LAYOUT = "supermarket"


def available_layouts() -> tuple[str, ...]:
    """Names of the shipped layouts (file stems under store_layouts/layouts)."""
    return tuple(sorted(p.stem for p in LAYOUT_DIR.glob("*.json")))


def load_layout(name_or_path: str | Path = DEFAULT_LAYOUT) -> Layout:
    """A shipped layout by name (``"supermarket"``) or any layout file by path.

    Parsed once per name/path and cached; `Layout` is immutable, so sharing is safe.
    """
    text = str(name_or_path)
    if text in available_layouts():
        return _load_cached(str(LAYOUT_DIR / f"{text}.json"))
    path = Path(text)
    if path.suffix != ".json" and not path.exists():
        raise LayoutError(f"layout {text!r} is neither a shipped layout "
                          f"({', '.join(available_layouts())}) nor a file")
    return _load_cached(str(path.resolve()))


@functools.lru_cache(maxsize=32)
def _load_cached(path: str) -> Layout:
    layout = load_layout_file(path)
    logger.info("loaded layout %s from %s", layout.id, path)
    return layout
