"""The order of bundle versions: releases only move forward, so "newer" must be exact.

Versions compare part by part, digit runs as numbers: `2026.12.06.9` < `2026.12.06.10`,
`test-2` < `test-10`. A number sorts before a word in the same place.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

_PARTS = re.compile(r"\d+|[^\d.\-_+]+")


def version_key(version: str) -> tuple[tuple[int, int, str], ...]:
    """A sort key: (0, number, "") for a digit run, (1, 0, word) for anything else."""
    return tuple((0, int(part), "") if part.isdigit() else (1, 0, part.lower())
                 for part in _PARTS.findall(version))


def is_newer(candidate: str, than: str) -> bool:
    return version_key(candidate) > version_key(than)


TIME_VERSION_FORMAT = "%Y.%m.%d.%H%M%S"


def time_version(now: datetime | None = None) -> str:
    """A new bundle's version from the UTC time (`2026.12.06.081500`): later is newer, and
    every trainer (a store's own, the demo's, the cloud's retraining) orders alike."""
    return (now or datetime.now(UTC)).astimezone(UTC).strftime(TIME_VERSION_FORMAT)
