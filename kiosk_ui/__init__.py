"""Kiosk, display and staff pages, served by the edge agent from `static/` (no CDN: a
store's network may be offline)."""

from pathlib import Path

STATIC_DIR = Path(__file__).parent / "static"
