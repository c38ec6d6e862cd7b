"""The store's map and route planner, with walking costs kept current from zone traffic;
`LiveStoreMap` follows the layout file the operator imports, without a restart."""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
from dataclasses import asdict
from datetime import timedelta
from pathlib import Path
from typing import Any

from models.events import format_ts, utc_now
from store_layouts import Layout, LayoutError, Route, RoutePlanner, load_layout_file

logger = logging.getLogger(__name__)

# Traffic older than this says nothing about the aisles now.
TRAFFIC_WINDOW = timedelta(minutes=10)


class StoreMap:
    """One layout's map and planner; `refresh_congestion` swaps in a planner priced by recent
    traffic (requests read `planner` once, so a swap never affects a route being planned).

    By name or path, the planner is shared (cached per name); a `Layout` gets a planner of
    its own, so a file read again under the same path never meets the old one's tables."""

    def __init__(self, layout: str | Layout) -> None:
        self.base = (RoutePlanner(layout) if isinstance(layout, Layout)
                     else RoutePlanner.for_layout(layout))
        self.planner = self.base
        self.traffic: dict[str, float] = {}  # people per zone the planner is priced with
        self._lock = threading.Lock()
        self._place_of_node = _place_names(self.base.layout)

    @property
    def layout(self) -> Layout:
        return self.base.layout

    def refresh_congestion(self, conn: sqlite3.Connection) -> dict[str, float]:
        since = format_ts(utc_now() - TRAFFIC_WINDOW)
        people = {zone: float(count) for zone, count in conn.execute(
            "SELECT zone_id, people FROM zone_traffic z WHERE ts = (SELECT max(ts) FROM"
            " zone_traffic WHERE zone_id = z.zone_id) AND ts >= ?", (since,))}
        return self.apply_traffic(people)

    def apply_traffic(self, people: dict[str, float]) -> dict[str, float]:
        """Price walking by these head counts (zones this layout lacks are left out)."""
        known = {zone: count for zone, count in people.items() if zone in self.layout.zones}
        with self._lock:
            self.planner = self.base.with_traffic(known)
            self.traffic = known
        return known

    def plan(self, items: list[tuple[str, str]], avoid_congestion: bool = True) -> Route:
        return self.planner.plan(items, avoid_congestion=avoid_congestion)

    def shelf_location(self, shelf_id: str) -> str | None:
        """Where a shelf of this layout is, in words on the store's signs ("Aisle 3");
        None for a shelf id the layout does not have (a sensor's own id)."""
        shelf = self.layout.shelves.get(shelf_id)
        if shelf is None:
            return None
        return shelf.name or self._place_of_node.get(shelf.node)

    def category_location(self, category: str | None) -> str | None:
        """Where a category is stocked, in words ("Aisle 3"); the first shelf listed when
        several hold it. None when no shelf of the layout holds it."""
        shelves = self.layout.shelves_for(category) if category else ()
        return self.shelf_location(shelves[0].id) if shelves else None

    def locate(self, shelf_id: str | None, category: str | None) -> str | None:
        """A shelf's place, by its id when the layout knows it, else by what it stocks."""
        return (self.shelf_location(shelf_id) if shelf_id else None) or \
            self.category_location(category)

    def zone_categories(self, zone_id: str) -> tuple[str, ...] | None:
        """Categories on the shelves of a zone; None for a zone this layout lacks."""
        zone = self.layout.zones.get(zone_id)
        if zone is None:
            return None
        return tuple(sorted({category for shelf in self.layout.shelves.values()
                             if shelf.node in zone.nodes for category in shelf.categories}))

    def map_payload(self) -> dict[str, Any]:
        """What a kiosk needs to draw the store: outline, fixtures, shelves, doors, zones."""
        layout = self.layout
        nodes = layout.nodes
        return {
            "layout_id": layout.id, "name": layout.name, "kind": layout.kind,
            "bounds": asdict(layout.bounds), "outline": [list(p) for p in layout.outline],
            "fixtures": [asdict(f) for f in layout.fixtures],
            "shelves": [{"id": s.id, "name": s.name, "x": nodes[s.node].x,
                         "y": nodes[s.node].y, "side": s.side,
                         "temperature": s.temperature, "categories": list(s.categories)}
                        for s in layout.shelves.values()],
            "entrances": [{"id": a.id, "name": a.name, "x": nodes[a.node].x,
                           "y": nodes[a.node].y} for a in layout.entrances.values()],
            "checkouts": [{"id": a.id, "name": a.name, "x": nodes[a.node].x,
                           "y": nodes[a.node].y} for a in layout.checkouts.values()],
            "zones": [{"id": z.id, "name": z.name} for z in layout.zones.values()],
        }


class LiveStoreMap:
    """The store's current `StoreMap`, following the operator's imported layout file.

    `follow()` (a background task, every LAYOUT_CHECK_INTERVAL_S) looks at the file's
    (mtime, size, inode); when they change it reads and checks the file and builds the whole
    new map first, then replaces `current`, one reference. A request holds the map it
    started with (`ServingState.for_request`). A file that does not load (corrupt, half
    written by hand) is logged and the running map stays until the file changes again."""

    def __init__(self, layout: str, follow: Path | None = None) -> None:
        self._follow = follow
        self._seen = _file_stamp(follow)
        # At start an imported file that does not load is an error, as any bad setting is.
        self.current = StoreMap(load_layout_file(follow) if self._seen else layout)

    def refresh_congestion(self, conn: sqlite3.Connection) -> dict[str, float]:
        return self.current.refresh_congestion(conn)

    def follow(self) -> bool:
        """Swap in the imported layout if its file changed since the last look (True then)."""
        if self._follow is None:
            return False
        stamp = _file_stamp(self._follow)
        if stamp == self._seen or stamp is None:
            return False  # unchanged, or removed: the store keeps the layout it has
        self._seen = stamp
        try:
            fresh = StoreMap(load_layout_file(self._follow))
        except (LayoutError, OSError) as exc:
            logger.error("%s: %s; still routing on layout %s", self._follow, exc,
                         self.current.layout.id)
            return False
        fresh.apply_traffic(self.current.traffic)
        previous, self.current = self.current, fresh
        logger.info("layout %s from %s replaces layout %s", fresh.layout.id, self._follow,
                    previous.layout.id)
        return True


def _file_stamp(path: Path | None) -> tuple[int, int, int] | None:
    """What changes when the file is replaced or rewritten; None when there is none."""
    if path is None:
        return None
    try:
        info = os.stat(path)
    except OSError:
        return None
    return info.st_mtime_ns, info.st_size, info.st_ino


def _place_names(layout: Layout) -> dict[str, str]:
    """Node id -> the name of the smallest named zone holding it: an aisle rather than the
    cross-aisle that also touches its end."""
    named = sorted((z for z in layout.zones.values() if z.name), key=lambda z: len(z.nodes))
    places: dict[str, str] = {}
    for zone in named:
        for node in zone.nodes:
            places.setdefault(node, zone.name)
    return places
