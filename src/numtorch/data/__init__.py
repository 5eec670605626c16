"""Datasets and mini-batches: ``load_mnist``, ``load_digits``, ``load_npz``, ``Batches``.

NumPy only; ``load_digits`` imports scikit-learn when called.
"""

from numtorch.data.datasets import load_digits, load_mnist, load_npz, mnist_splits, train_test_split
from numtorch.data.idx import read_idx
from numtorch.data.loader import Batches

__all__ = ["Batches", "load_digits", "load_mnist", "load_npz", "mnist_splits", "read_idx",
           "train_test_split"]
