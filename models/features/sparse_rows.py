"""Weighted sums of a few CSR rows, dense: the small-input path of the ranker's scores.

For one shopper (serving) a handful of numpy calls beat scipy's sparse product, whose
per-call overhead is most of the cost at that size.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

# Shoppers × items scores are computed dense up to this many cells: serving's one shopper
# against a few thousand items needs a few numpy calls, where sparse products spent
# ~0.7 ms per request building and multiplying small CSR matrices.
DENSE_MAX_CELLS = 1 << 18
# Shoppers × items scores: CSR for a training chunk, dense for a few shoppers.
ScoreMatrix = sp.csr_matrix | np.ndarray


def row_pointers(rows: np.ndarray, n_rows: int) -> np.ndarray:
    """CSR row pointers of entries already in row order."""
    indptr = np.zeros(n_rows + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=n_rows), out=indptr[1:])
    return indptr


def weighted_row_sums(rows: np.ndarray, picks: np.ndarray, weights: np.ndarray,
                      m: sp.csr_matrix, n_rows: int) -> np.ndarray:
    """Dense n_rows × m.shape[1]: out[r] = Σ weights · m[picks] over the entries of row r."""
    n_cols = m.shape[1]
    starts = m.indptr[picks]
    lengths = m.indptr[picks + 1] - starts
    first = np.cumsum(lengths) - lengths
    entry = np.repeat(starts - first, lengths) + np.arange(int(lengths.sum()))
    cells = np.repeat(np.asarray(rows, np.int64), lengths) * n_cols + m.indices[entry]
    sums = np.bincount(cells, np.repeat(weights, lengths) * m.data[entry],
                       minlength=n_rows * n_cols)
    return sums.reshape(n_rows, n_cols)
