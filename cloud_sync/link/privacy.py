"""What of an event may leave the store: an allow-list of fields per event type, and shoppers
only as pseudonyms.

A shopper id leaves the store only for a shopper who consented to personalization, and then
as an HMAC of it under the chain's pseudonym key: the cloud joins a shopper's visits across
stores without ever learning the loyalty number or name, and the chain (which holds the key)
can find an erased shopper's rows in the lake. Everyone else goes up anonymous
(`customer_id: null`): their baskets still count for sales and training.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

# Hex characters kept of the HMAC-SHA256: 128 bits, no collisions among any chain's shoppers.
PSEUDONYM_HEX_CHARS = 32
MIN_PSEUDONYM_KEY_BYTES = 16

# Fields of each event type that may go up, besides the envelope (event_id, type, ts,
# device_id). Anything else a device sends (a newer firmware's extra field, a typo) stays in
# the store. Free text never goes: interaction contexts are kept only from a known set.
UPLINK_FIELDS: dict[str, tuple[str, ...]] = {
    "pos.transaction": ("transaction_id", "customer_id", "items", "total"),
    "shelf.reading": ("product_id", "quantity", "weight_g", "capacity"),
    "zone.traffic": ("zone_id", "people", "avg_dwell_s"),
    "presence": ("customer_id", "zone_id"),
    "interaction": ("customer_id", "action", "product_id", "context", "model_version"),
}
ITEM_FIELDS = ("product_id", "quantity", "unit_price", "discount")
# Presence comes from the shopper's own phone or tag: its device id names the shopper.
PERSONAL_DEVICE_TYPES = frozenset({"presence"})
KNOWN_CONTEXTS = frozenset({"shopping_list", "recommendations", "similar", "trending",
                            "kiosk", "display", "handheld"})


def pseudonymize(key: bytes, customer_id: str) -> str:
    """The shopper's id as it appears outside the store."""
    if len(key) < MIN_PSEUDONYM_KEY_BYTES:
        raise ValueError(f"the pseudonym key must have at least {MIN_PSEUDONYM_KEY_BYTES} bytes")
    digest = hmac.new(key, customer_id.encode(), hashlib.sha256).hexdigest()
    return digest[:PSEUDONYM_HEX_CHARS]


def uplink_record(event: Mapping[str, Any], *, pseudonym: str | None) -> dict[str, Any]:
    """The event as it leaves the store. `pseudonym` replaces the shopper's id (None: the
    shopper goes up anonymous). Unknown event types raise KeyError."""
    kind = event["type"]
    device = None if kind in PERSONAL_DEVICE_TYPES else event.get("device_id")
    record: dict[str, Any] = {"event_id": event["event_id"], "type": kind, "ts": event["ts"],
                              "device_id": device}
    for name in UPLINK_FIELDS[kind]:
        if name == "customer_id":
            record[name] = pseudonym
        elif name == "items":
            record[name] = [{f: item.get(f) for f in ITEM_FIELDS} for item in event[name]]
        elif name == "context":
            context = event.get(name)
            record[name] = context if context in KNOWN_CONTEXTS else None
        else:
            record[name] = event.get(name)
    return record
