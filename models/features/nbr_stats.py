"""Population statistics the next-basket features need: popularity and co-purchase.

Computed once from the training data and shipped with the model (``save``/``load`` as a
single ``.npz``), so the edge scores a shopper with the same numbers training saw.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp

from models.features.nbr_neighbours import shopper_pool
from models.features.nbr_state import StateTable, build_state_table

if TYPE_CHECKING:  # training only: serving must not import the dataset loaders (pandas)
    from models.datasets.base import BasketDataset

logger = logging.getLogger(__name__)

# Co-purchase neighbours kept per item: bounds both memory here and the bundle size at
# the edge, and beyond ~100 the conditional probabilities are tiny anyway.
COOC_TOP_N = 100
# Additive smoothing of P(i | j): items seen a handful of times would otherwise get
# near-1 probabilities from one co-occurrence.
COOC_SHRINK = 10.0
# Items per block when multiplying out co-occurrences (bounds peak memory).
COOC_BLOCK = 2048


@dataclass(frozen=True)
class ItemStats:
    """Per-item population statistics and two item → item co-purchase tables.

    - ``popularity``: share of history baskets containing the item;
    - ``repeat_rate``: among shoppers who bought the item, the share who bought it in
      at least two baskets (how "habitual" the item is);
    - ``basket_cooc[j, i]``: smoothed P(i in a basket | j in that basket);
    - ``shopper_cooc[j, i]``: smoothed P(shopper ever bought i | they bought j);
    - ``item_category``: the item's category code (int32, -1 when unknown / no categories);
    - ``shopper_pool``: history shoppers' repertoire vectors, the neighbours of the
      ``knn_*`` features (:mod:`models.features.nbr_neighbours`; rows carry no ids).
    """

    popularity: np.ndarray
    repeat_rate: np.ndarray
    basket_cooc: sp.csr_matrix
    shopper_cooc: sp.csr_matrix
    item_category: np.ndarray
    shopper_pool: sp.csr_matrix

    @property
    def n_items(self) -> int:
        return len(self.popularity)

    def popular_items(self, n: int) -> np.ndarray:
        """The n most popular item codes, best first."""
        return self._by_popularity[:n]

    @cached_property
    def shopper_pool_by_item(self) -> sp.csr_matrix:
        """Items × pool shoppers: the pool transposed once per loaded model, not per
        request (transposing a large store's pool costs ~5 ms)."""
        return self.shopper_pool.T.tocsr()

    @cached_property
    def _by_popularity(self) -> np.ndarray:
        # Sorted once per loaded model; serving asks for every request.
        return np.lexsort((np.arange(self.n_items), -self.popularity))

    def save(self, path: str | Path) -> None:
        np.savez_compressed(
            path,
            popularity=self.popularity,
            repeat_rate=self.repeat_rate,
            item_category=self.item_category,
            **_pack("basket_cooc", self.basket_cooc),
            **_pack("shopper_cooc", self.shopper_cooc),
            **_pack("shopper_pool", self.shopper_pool),
        )

    @classmethod
    def load(cls, path: str | Path) -> ItemStats:
        with np.load(path) as z:
            return cls(
                popularity=z["popularity"],
                repeat_rate=z["repeat_rate"],
                basket_cooc=_unpack("basket_cooc", z),
                shopper_cooc=_unpack("shopper_cooc", z),
                item_category=z["item_category"],
                shopper_pool=_unpack("shopper_pool", z),
            )


def _pack(name: str, m: sp.csr_matrix) -> dict[str, np.ndarray]:
    return {
        f"{name}_data": m.data,
        f"{name}_indices": m.indices,
        f"{name}_indptr": m.indptr,
        f"{name}_shape": np.array(m.shape),
    }


def _unpack(name: str, z: np.lib.npyio.NpzFile) -> sp.csr_matrix:
    return sp.csr_matrix(
        (z[f"{name}_data"], z[f"{name}_indices"], z[f"{name}_indptr"]),
        shape=tuple(z[f"{name}_shape"]),
    )


def binary_rows(row: np.ndarray, item: np.ndarray, n_rows: int, n_items: int) -> sp.csr_matrix:
    """Binary rows × items CSR from (row, item) pairs (duplicates collapse)."""
    m = sp.csr_matrix(
        (np.ones(len(row), dtype=np.float32), (row, item)), shape=(n_rows, n_items)
    )
    m.sum_duplicates()
    m.data[:] = 1.0
    return m


def conditional_cooc(
    occurrences: sp.csr_matrix, top_n: int = COOC_TOP_N, shrink: float = COOC_SHRINK
) -> sp.csr_matrix:
    """Items × items: smoothed P(i | j) from binary (events × items) occurrences.

    Row j keeps its ``top_n`` largest entries; the diagonal is dropped.
    """
    occ = occurrences.tocsc().astype(np.float32)
    occ_t = occ.T.tocsr()
    support = np.asarray(occ.sum(axis=0)).ravel()
    n_items = occ.shape[1]
    blocks = []
    for lo in range(0, n_items, COOC_BLOCK):
        hi = min(lo + COOC_BLOCK, n_items)
        block = (occ_t[lo:hi] @ occ).tocsr()  # (hi-lo) × items co-occurrence counts
        _zero_diag(block, lo)
        block.eliminate_zeros()
        block = sp.diags(1.0 / (support[lo:hi] + shrink)).dot(block).tocsr()
        blocks.append(_keep_top_n(block, top_n))
    out = sp.vstack(blocks).tocsr().astype(np.float32)
    logger.info("co-purchase table: %d items, %d entries", n_items, out.nnz)
    return out


def _zero_diag(block: sp.csr_matrix, offset: int) -> None:
    rows = np.repeat(np.arange(block.shape[0]), np.diff(block.indptr))
    block.data[block.indices == rows + offset] = 0.0


def _keep_top_n(m: sp.csr_matrix, n: int) -> sp.csr_matrix:
    lengths = np.diff(m.indptr)
    if not len(lengths) or lengths.max() <= n:
        return m
    rows = np.repeat(np.arange(m.shape[0]), lengths)
    order = np.lexsort((-m.data, rows))
    rank = np.arange(len(order)) - np.repeat(m.indptr[:-1], lengths)
    keep = order[rank < n]
    return sp.csr_matrix((m.data[keep], (rows[keep], m.indices[keep])), shape=m.shape)


def fit_item_stats(history: BasketDataset, table: StateTable | None = None) -> ItemStats:
    """Item statistics from history baskets (never target baskets). ``table``: every
    history user's state (row = user code), when the caller has built it already."""
    starts = history.basket_starts()
    n_baskets = len(starts) - 1
    basket_row = np.repeat(np.arange(n_baskets), np.diff(starts))
    baskets = binary_rows(basket_row, history.item, n_baskets, history.n_items)
    popularity = np.asarray(baskets.sum(axis=0)).ravel() / max(n_baskets, 1)
    owner = history.user[starts[:-1]]
    per_user = sp.csr_matrix(
        (np.ones(n_baskets, dtype=np.float32), (owner, np.arange(n_baskets))),
        shape=(history.n_users, n_baskets),
    ) @ baskets
    per_user = per_user.tocsc()
    buyers = np.diff(per_user.indptr).astype(np.float64)
    repeaters = _count_repeaters(per_user, history.n_items)
    repeat_rate = repeaters / (buyers + 1.0)
    shoppers = per_user.tocsr()
    shoppers.data[:] = 1.0
    item_category = np.full(history.n_items, -1, dtype=np.int32)
    if history.category is not None:
        item_category[history.item] = history.category
    if table is None:
        table = build_state_table(history, np.arange(history.n_users))
    return ItemStats(
        popularity=popularity.astype(np.float32),
        repeat_rate=repeat_rate.astype(np.float32),
        basket_cooc=conditional_cooc(baskets),
        shopper_cooc=conditional_cooc(shoppers),
        item_category=item_category,
        shopper_pool=shopper_pool(table, history.n_items),
    )


def _count_repeaters(per_user_csc: sp.csc_matrix, n_items: int) -> np.ndarray:
    """Per item: shoppers with the item in at least two baskets."""
    cols = np.repeat(np.arange(n_items), np.diff(per_user_csc.indptr))
    return np.bincount(cols[per_user_csc.data >= 2], minlength=n_items).astype(np.float64)
