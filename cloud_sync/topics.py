"""The MQTT topics that cross the store boundary, in one place: the store's IoT policy, the
local broker's ACL, the uplink, the lake workers and the downlink all build on these.

A store's thing name is its store id; every topic a store may touch carries it, so one policy
with `${iot:Connection.Thing.ThingName}` fences every store into its own topics.
"""

from __future__ import annotations

UPLINK_SUFFIX = "events"
# Lake workers share the uplink's load: each batch goes to one worker of the group.
LAKE_SHARE_GROUP = "lake"


def uplink_topic(store: str) -> str:
    """Where a store publishes its event batches."""
    return f"dt/instore/{store}/{UPLINK_SUFFIX}"


def telemetry_prefix(store: str) -> str:
    """Everything a store may publish under (`dt/` = data from the device)."""
    return f"dt/instore/{store}/"


def command_prefix(store: str) -> str:
    """Everything the cloud sends to one store (`cmd/` = commands to the device)."""
    return f"cmd/instore/{store}/"


def command_topic(store: str, kind: str) -> str:
    return f"{command_prefix(store)}{kind}"


def jobs_prefix(thing: str) -> str:
    """The device side of AWS IoT Jobs for one thing."""
    return f"$aws/things/{thing}/jobs/"


def lake_subscription() -> str:
    """The lake workers' shared subscription over every store's uplink."""
    return f"$share/{LAKE_SHARE_GROUP}/dt/instore/+/{UPLINK_SUFFIX}"


def store_of_uplink_topic(topic: str) -> str | None:
    parts = topic.split("/")
    if len(parts) == 4 and parts[:2] == ["dt", "instore"] and parts[3] == UPLINK_SUFFIX:
        return parts[2] or None
    return None
