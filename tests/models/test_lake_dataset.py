"""The lake loader: POS rows of the lake's Parquet schema become shoppers' baskets, per store
and chain-wide; anonymous sales, other event types and empty sales are nobody's history."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from models.datasets.lake import UNKNOWN_CATEGORY, load_lake

ITEM = pa.struct([("product_id", pa.string()), ("quantity", pa.float64()),
                  ("unit_price", pa.float64()), ("discount", pa.float64())])
# The lake's columns this loader reads, typed as cloud_sync/lake/schema.py writes them.
SCHEMA = pa.schema([("event_id", pa.string()), ("store_id", pa.string()),
                    ("type", pa.string()), ("ts", pa.timestamp("us", tz="UTC")),
                    ("transaction_id", pa.string()), ("customer_id", pa.string()),
                    ("items", pa.list_(ITEM)), ("zone_id", pa.string())])


def sale(store: str, transaction: str, customer: str | None, day: int,
         *lines: tuple[str, float, float, float]) -> dict[str, Any]:
    return {"event_id": f"{store}-{transaction}", "store_id": store, "type": "pos.transaction",
            "ts": datetime(2026, 11, day, 10, tzinfo=UTC), "transaction_id": transaction,
            "customer_id": customer, "zone_id": None,
            "items": [{"product_id": p, "quantity": q, "unit_price": u, "discount": d}
                      for p, q, u, d in lines]}


ROWS = [
    sale("s1", "t1", "alice", 1, ("milk", 2, 1.0, 0.0), ("bread", 1, 2.5, 0.5)),
    sale("s1", "t2", "alice", 8, ("milk", 1, 1.0, 0.0)),
    sale("s1", "t3", None, 2, ("beer", 6, 1.0, 0.0)),  # anonymous: no history
    sale("s2", "t1", "alice", 4, ("eggs", 1, 3.0, 0.0)),  # same till id, other store
    sale("s2", "t9", "bob", 5, ("milk", 1, 1.0, 0.0)),
    sale("s2", "t10", "bob", 6),  # a sale without lines
    {"event_id": "z", "store_id": "s1", "type": "zone.traffic", "zone_id": "z1",
     "ts": datetime(2026, 11, 3, tzinfo=UTC), "transaction_id": None, "customer_id": None,
     "items": None},
]


@pytest.fixture(params=["table", "dicts"])
def rows(request: pytest.FixtureRequest) -> Any:
    return pa.Table.from_pylist(ROWS, schema=SCHEMA) if request.param == "table" else ROWS


def baskets(ds: Any) -> dict[str, list[list[str]]]:
    return {ds.user_ids[u]: [sorted(ds.item_ids[i] for i in b) for b in ds.user_baskets(u)]
            for u in range(ds.n_users)}


def test_chain_wide_a_shoppers_baskets_from_every_store_in_time_order(rows: Any) -> None:
    ds = load_lake(rows)
    assert baskets(ds) == {"alice": [["bread", "milk"], ["eggs"], ["milk"]],
                           "bob": [["milk"]]}
    assert ds.name == "lake:chain"
    assert "beer" not in ds.item_ids  # the anonymous sale is nobody's history
    first = np.flatnonzero(ds.user == ds.user_ids.index("alice"))[:2]
    assert ds.ts[first].tolist() == [datetime(2026, 11, 1, 10, tzinfo=UTC).timestamp()] * 2
    paid = dict(zip([ds.item_ids[i] for i in ds.item[first]], ds.price[first], strict=True))
    assert paid == {"milk": 2.0, "bread": 2.0}  # quantity x unit price - discount
    assert ds.quantity[first].tolist() == [2.0, 1.0]


def test_per_store_only_that_stores_sales(rows: Any) -> None:
    ds = load_lake(rows, store_id="s2")
    assert baskets(ds) == {"alice": [["eggs"]], "bob": [["milk"]]}
    assert ds.name == "lake:s2"


def test_same_transaction_id_at_two_stores_is_two_baskets(rows: Any) -> None:
    ds = load_lake(rows)
    assert int(ds.baskets_per_user()[ds.user_ids.index("alice")]) == 3


def test_categories_from_the_catalog_unknown_products_named_so(rows: Any) -> None:
    ds = load_lake(rows, categories={"milk": "DAIRY", "bread": "BAKERY"})
    assert ds.category is not None and ds.category_names is not None
    by_item = {ds.item_ids[i]: ds.category_names[c]
               for i, c in zip(ds.item, ds.category, strict=True)}
    assert by_item == {"milk": "DAIRY", "bread": "BAKERY", "eggs": UNKNOWN_CATEGORY}
    assert load_lake(rows).category is None


def test_rfc3339_text_times_and_no_sales_at_all() -> None:
    row = sale("s1", "t1", "carol", 1, ("milk", 1, 1.0, 0.0)) | {"ts": "2026-11-01T10:00:00Z"}
    assert load_lake([row]).ts[0] == datetime(2026, 11, 1, 10, tzinfo=UTC).timestamp()
    empty = load_lake([ROWS[2], ROWS[-1]])
    assert empty.n_rows == 0 and empty.n_users == 0
