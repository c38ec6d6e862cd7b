"""What every next-basket recommender looks like to the evaluation."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import scipy.sparse as sp

from models.evaluation.protocol import NbrTask


@dataclass(frozen=True)
class FitData:
    """What a model may learn from in one split.

    ``task.targets`` must not be read directly: ``targets`` holds only the rows of
    ``train_users`` (and ``val_users``, for tuning); test users' rows are empty.
    Histories of all users are fair game: at serving time a shopper's past is known.
    """

    task: NbrTask
    train_users: np.ndarray
    val_users: np.ndarray
    targets: sp.csr_matrix


class NextBasketModel(Protocol):
    """A recommender: learns from :class:`FitData`, then ranks items for given users."""

    name: str

    def fit(self, data: FitData) -> None: ...

    def recommend(self, users: np.ndarray, k: int) -> np.ndarray:
        """(len(users) × k) item codes, best first, −1 where the model has nothing."""
        ...
