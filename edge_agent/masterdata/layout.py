"""The store's own layout, imported by its operator: checked like any layout file, then kept
beside the database (`store-layout.json`), where `edge-agent run` finds it.

A `layout` setting given explicitly (flag, environment, config file) still wins: the
imported file replaces only the shipped default.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from edge_agent.settings import Settings
from store_layouts import LayoutError
from store_layouts.parse import load_layout_file

IMPORTED_LAYOUT_FILE = "store-layout.json"


def imported_layout_path(settings: Settings) -> Path:
    return settings.db.parent / IMPORTED_LAYOUT_FILE


def import_layout(settings: Settings, source: Path) -> str:
    """Check `source` (LayoutError naming what is wrong; nothing changes then) and keep it
    as this store's layout. Returns the layout's id."""
    layout = load_layout_file(source)
    target = imported_layout_path(settings)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.partial")
    shutil.copyfile(source, partial)
    os.replace(partial, target)  # a starting agent sees the old file or the new, never half
    return layout.id


def with_imported_layout(settings: Settings) -> Settings:
    """`settings` with the imported layout, unless `layout` was set explicitly."""
    path = imported_layout_path(settings)
    if "layout" in settings.model_fields_set or not path.is_file():
        return settings
    return settings.model_copy(update={"layout": str(path)})


__all__ = ["IMPORTED_LAYOUT_FILE", "LayoutError", "import_layout", "imported_layout_path",
           "with_imported_layout"]
