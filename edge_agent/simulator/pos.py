"""Building POS transaction events (shared by live traffic, history back-fill and replay)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from models.events import PosItem, PosTransaction

# The demo store's tills; a transaction goes out on `stores/{store}/pos/{register}`.
REGISTERS = tuple(f"till-{n:02d}" for n in range(1, 7))
# Namespace for deterministic event ids (uuid5): history and replay publish the same ids on
# every run, so publishing them twice stores them once.
EVENT_ID_NAMESPACE = uuid.UUID("5b0e3f3e-6c1c-4a59-9a39-3f7f1f6de1a1")

Line = tuple[str, float, float, float]  # product_id, quantity, unit_price, discount


def deterministic_id(*parts: object) -> str:
    return str(uuid.uuid5(EVENT_ID_NAMESPACE, ":".join(str(p) for p in parts)))


def pos_event(*, store_id: str, event_id: str, ts: datetime, transaction_id: str,
              customer_id: str | None, lines: Sequence[Line]) -> PosTransaction:
    items = [PosItem(product_id=pid, quantity=float(qty), unit_price=round(float(price), 2),
                     discount=round(float(discount), 2))
             for pid, qty, price, discount in lines]
    total = round(sum(i.quantity * i.unit_price - i.discount for i in items), 2)
    return PosTransaction(event_id=event_id, store_id=store_id, ts=ts, type="pos.transaction",
                          transaction_id=transaction_id, customer_id=customer_id, items=items,
                          total=total)
