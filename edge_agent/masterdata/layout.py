"""The store's own layout, imported by its operator: checked like any layout file, then kept
beside the database (`store-layout.json`). `edge-agent run` starts on it, and a running agent
(each HTTP worker) follows it: a new import is routed on within `LAYOUT_CHECK_INTERVAL_S`
(`edge_agent.wayfinding.LiveStoreMap`).

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
# How often a running agent looks at the imported file (one stat): a new floor plan is in
# use a second after its import, at no cost worth measuring.
LAYOUT_CHECK_INTERVAL_S = 1.0


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
    # A running or starting agent reads the old file or the new, never half of one.
    os.replace(partial, target)
    return layout.id


def layout_is_configured(settings: Settings) -> bool:
    """True when `layout` was set explicitly to something other than the imported file."""
    if "layout" not in settings.model_fields_set:
        return False
    return Path(settings.layout).resolve() != imported_layout_path(settings).resolve()


def with_imported_layout(settings: Settings) -> Settings:
    """`settings` with the imported layout, unless `layout` was set explicitly."""
    path = imported_layout_path(settings)
    if layout_is_configured(settings) or not path.is_file():
        return settings
    return settings.model_copy(update={"layout": str(path)})


def layout_to_follow(settings: Settings) -> Path | None:
    """The imported file a running agent with these settings follows; None when a
    configured layout wins (it is fixed for the life of the process)."""
    return None if layout_is_configured(settings) else imported_layout_path(settings)


def running_store_notice(settings: Settings) -> str:
    """What the import tells the operator about a store that is running now."""
    if layout_is_configured(settings):
        return (f"note: layout is set explicitly to {settings.layout!r} (EDGE_LAYOUT"
                " or the config file): an agent run with these settings keeps that layout;"
                " remove the setting to use the imported one")
    # One check interval, then building the planner (milliseconds, even for a hypermarket).
    within = LAYOUT_CHECK_INTERVAL_S + 1
    return f"a running agent routes with it within {within:.0f} s (no restart needed)"


__all__ = ["IMPORTED_LAYOUT_FILE", "LAYOUT_CHECK_INTERVAL_S", "LayoutError", "import_layout",
           "imported_layout_path", "layout_is_configured", "layout_to_follow",
           "running_store_notice", "with_imported_layout"]
