"""Dataset loaders: every source becomes a :class:`BasketDataset`."""

from models.datasets.base import BasketDataset, build_dataset
from models.datasets.completejourney import load_completejourney
from models.datasets.csv import CsvFormatError, load_csv
from models.datasets.tafeng import default_tafeng_dir, load_tafeng, load_tafeng_keysets

__all__ = [
    "BasketDataset",
    "CsvFormatError",
    "build_dataset",
    "default_tafeng_dir",
    "load_completejourney",
    "load_csv",
    "load_tafeng",
    "load_tafeng_keysets",
]
