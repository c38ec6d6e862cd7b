"""Which stores are in which wave: the canaries first, then the rest of the fleet in a
deterministic order (a hash of the release id and the store), cut at cumulative shares.

The order changes from release to release, so the same stores are not always the first to
meet a new bundle, yet any controller recomputes the same waves for the same release."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Sequence
from typing import Any

from cloud_sync.fleet.provision import FLEET_GROUP


class WaveError(ValueError):
    """The waves cannot be planned (unknown canary, empty fleet)."""


def fleet_stores(iot: Any) -> list[str]:
    """Every thing in the fleet group, sorted."""
    stores: list[str] = []
    for page in iot.get_paginator("list_things_in_thing_group").paginate(
            thingGroupName=FLEET_GROUP):
        stores.extend(page.get("things", []))
    return sorted(set(stores))


def _rank(release_id: str, store: str) -> str:
    return hashlib.sha256(f"{release_id}\0{store}".encode()).hexdigest()


def plan_waves(release_id: str, fleet: Iterable[str], canaries: Sequence[str],
               percents: Sequence[int]) -> list[tuple[str, list[str]]]:
    """(label, stores) of each wave, the canaries (when given) as wave 0 labelled
    ``canary``, then ``10%``...: no store twice, no empty wave. ``percents`` are cumulative
    shares of the fleet without the canaries."""
    members = set(fleet)
    if not members:
        raise WaveError(f"the fleet group {FLEET_GROUP} has no stores")
    unknown = sorted(set(canaries) - members)
    if unknown:
        raise WaveError(f"canary stores not in {FLEET_GROUP}: {', '.join(unknown)}")
    rest = sorted(members - set(canaries), key=lambda store: _rank(release_id, store))
    waves = [("canary", list(canaries))] if canaries else []
    taken = 0
    for percent in percents:
        upto = math.ceil(len(rest) * percent / 100)
        if upto > taken:
            waves.append((f"{percent}%", rest[taken:upto]))
            taken = upto
    return waves


def thing_arns(iot: Any, things: Sequence[str]) -> list[str]:
    """ARNs of ``things`` (create_job targets): one describe_thing for the account's prefix."""
    if not things:
        return []
    first = iot.describe_thing(thingName=things[0])["thingArn"]
    prefix = first.rsplit("/", 1)[0]
    return [f"{prefix}/{thing}" for thing in things]


def thing_of(arn: str) -> str:
    return arn.rsplit("/", 1)[-1]
