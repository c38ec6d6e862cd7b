"""Consent decides what is kept: a shopper's presence and interactions are stored under
their id only if they consented to personalization.

Applied to each batch before it is stored. Presence of anyone else (a shopper who did not
consent, or an id the store does not know) leaves no presence row, and the event log keeps
the event without the id (its `event_id` still deduplicates redeliveries). An interaction
is kept anonymous: clicks still count for the store's click-through, but belong to no one.
"""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import Sequence

import orjson

from edge_agent.features.store import consenting
from edge_agent.storage.projections import NewEvent
from models.events import Interaction, Presence


def withhold_unconsented(conn: sqlite3.Connection, events: Sequence[NewEvent]
                         ) -> list[NewEvent]:
    """`events`, with the shopper id removed from presence and interactions of shoppers
    without personalization consent."""
    personal = {item.event.customer_id for item in events  # type: ignore[union-attr]
                if isinstance(item.event, Presence | Interaction) and item.event.customer_id}
    if not personal:
        return list(events)
    allowed = consenting(conn, personal)
    return [item if not isinstance(item.event, Presence | Interaction)
            or item.event.customer_id in allowed else _anonymous(item) for item in events]


def _anonymous(item: NewEvent) -> NewEvent:
    fields = orjson.loads(item.payload)
    fields["customer_id"] = None
    # model_copy does not validate: a presence without its shopper exists only here, on its
    # way to the event log (SensorTables keeps no row for it).
    event = item.event.model_copy(update={"customer_id": None})
    return dataclasses.replace(item, event=event, payload=orjson.dumps(fields))
