"""Datasets as NumPy arrays: MNIST-style IDX folders, scikit-learn's digits, a user's .npz.

Every loader returns images as float32 in [0, 1] with shape (N, 1, H, W)
(channels first, as the conv layers take them; an MLP flattens them) and
labels as int64 (N,).
"""

import os

import numpy as np

from numtorch._checks import check_finite, check_int, check_number, check_positive_int
from numtorch.data.idx import read_idx
from numtorch.io.archive import Npz, abridged

MAX_DATASET_BYTES = 2**32  # the loaders' default max_bytes: 4 GiB (MNIST's training set takes 235 MB)
MNIST_PREFIXES = {"train": "train", "test": "t10k"}
MNIST_SUFFIXES = ("-{kind}-idx{rank}-ubyte.gz", "-{kind}-idx{rank}-ubyte",
                  "-{kind}.idx{rank}-ubyte.gz", "-{kind}.idx{rank}-ubyte")


def find_mnist_file(directory, split, kind, rank):
    """The path of ``train-images-idx3-ubyte[.gz]`` and its spellings, or None."""
    for suffix in MNIST_SUFFIXES:
        path = os.path.join(directory, MNIST_PREFIXES[split] + suffix.format(kind=kind, rank=rank))
        if os.path.isfile(path):
            return path
    return None


def mnist_splits(directory):
    """The splits (``"train"``, ``"test"``) whose image and label files are in ``directory``."""
    return [split for split in MNIST_PREFIXES
            if find_mnist_file(directory, split, "images", 3)
            and find_mnist_file(directory, split, "labels", 1)]


def load_mnist(directory, split="train", max_bytes=MAX_DATASET_BYTES):
    """Load one split of MNIST or Fashion-MNIST (the same file names) from ``directory``.

    ``split="train"`` reads ``train-images-idx3-ubyte[.gz]`` and
    ``train-labels-idx1-ubyte[.gz]``; ``split="test"`` the ``t10k-`` files.
    Returns ``X`` float32 (N, 1, rows, cols) in [0, 1] and ``y`` int64 (N,).
    ``max_bytes``: the most memory the load may take, the files' values as
    read plus the float32 images and int64 labels (4 GiB by default; ``None``
    for no limit), checked from each IDX header before its values are read.
    """
    if max_bytes is not None:
        max_bytes = check_positive_int("load_mnist", max_bytes, "max_bytes")
    if split not in MNIST_PREFIXES:
        raise ValueError(f"load_mnist: expected split 'train' or 'test', got {split!r}")
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"load_mnist: {directory} is not a directory")
    paths = {}
    for kind, rank in (("images", 3), ("labels", 1)):
        paths[kind] = find_mnist_file(directory, split, kind, rank)
        if paths[kind] is None:
            raise FileNotFoundError(
                f"load_mnist: no {MNIST_PREFIXES[split]}-{kind}-idx{rank}-ubyte[.gz] in {directory}"
            )
    # Each image value takes 1 byte as read and 4 as float32, each label 1 and 8 as int64.
    images = read_idx(paths["images"], max_bytes=None if max_bytes is None else max_bytes // 5)
    left = None if max_bytes is None else max(max_bytes - 5 * images.size, 0)
    labels = read_idx(paths["labels"], max_bytes=None if left is None else left // 9)
    if images.dtype != np.uint8 or images.ndim != 3:
        raise ValueError(f"{paths['images']}: expected uint8 images (N, rows, cols), "
                         f"got {images.dtype} of shape {images.shape}")
    if labels.dtype != np.uint8 or labels.ndim != 1:
        raise ValueError(f"{paths['labels']}: expected uint8 labels (N,), "
                         f"got {labels.dtype} of shape {labels.shape}")
    if len(images) != len(labels):
        raise ValueError(f"{directory}: {len(images)} images but {len(labels)} labels")
    if len(labels) and labels.max() > 9:
        raise ValueError(f"{paths['labels']}: expected labels 0..9, got {labels.max()}")
    X = images.astype(np.float32)
    X /= 255.0
    return X[:, None, :, :], labels.astype(np.int64)


def train_test_split(X, y, test_fraction=0.2, seed=0):
    """Shuffle with ``seed`` and split: ``(X_train, y_train), (X_test, y_test)``.

    The test part has ``round(test_fraction * N)`` samples, at least one of each part.
    """
    n = check_pair("train_test_split", X, y)
    check_number("train_test_split", test_fraction, "test_fraction", low=0, high=1, low_open=True,
                  high_open=True)
    seed = check_int("train_test_split", seed, "seed", low=0)
    n_test = int(round(test_fraction * n))
    if n_test < 1 or n_test > n - 1:
        raise ValueError(f"train_test_split: {n} samples cannot be split with test_fraction {test_fraction}")
    order = np.random.default_rng(seed).permutation(n)
    test, train = order[:n_test], order[n_test:]
    return (X[train], y[train]), (X[test], y[test])


def load_digits(test_fraction=0.2, seed=0):
    """scikit-learn's bundled 8x8 digits (1,797 images, 10 classes), split with ``seed``.

    Returns ``(X_train, y_train), (X_test, y_test)``; images float32
    (N, 1, 8, 8) in [0, 1] (the 0..16 pixel values divided by 16).
    Needs scikit-learn (``pip install numtorch[train]``).
    """
    try:
        from sklearn.datasets import load_digits as sklearn_digits
    except ImportError:
        raise ImportError("load_digits needs scikit-learn: pip install 'numtorch[train]'") from None
    digits = sklearn_digits()
    X = (digits.images.astype(np.float32) / 16.0)[:, None, :, :]
    return train_test_split(X, digits.target.astype(np.int64), test_fraction, seed)


def check_pair(owner, X, y):
    """Validate samples ``X`` (N, ...) float and labels ``y`` (N,) integer; return N."""
    if not isinstance(X, np.ndarray) or X.dtype.kind != "f" or X.ndim < 2:
        raise TypeError(f"{owner}: expected X as a float array (N, ...), got "
                         f"{getattr(X, 'dtype', type(X).__name__)} of shape {getattr(X, 'shape', '?')}")
    if not isinstance(y, np.ndarray) or y.dtype.kind not in "iu" or y.ndim != 1:
        raise TypeError(f"{owner}: expected y as integer labels (N,), got "
                         f"{getattr(y, 'dtype', type(y).__name__)} of shape {getattr(y, 'shape', '?')}")
    if len(X) != len(y):
        raise ValueError(f"{owner}: X has {len(X)} samples but y has {len(y)} labels "
                         "(expected one label per sample)")
    if len(y) == 0:
        raise ValueError(f"{owner}: no samples (expected at least one, got X of shape {X.shape})")
    if y.min() < 0:
        raise ValueError(f"{owner}: expected non-negative labels, got {y.min()}")
    return len(y)


def load_npz(path, max_bytes=MAX_DATASET_BYTES):
    """A user's dataset: an ``.npz`` with arrays ``X`` (N, ...) and ``y`` (N,) integer labels.

    Opened with ``allow_pickle=False``. ``X`` is converted to float32 as
    stored (uint8 pixels are not rescaled); returns ``(X, y)`` with ``y`` int64.
    The declared kinds and shapes of ``X`` and ``y`` are checked from their
    headers before either is read, and so is the memory the load will take:
    ``X`` and ``y`` as stored, plus ``X`` as float32 and ``y`` as int64 where
    they are not already, plus a byte a value of float ``X`` for the finite
    check, at most ``max_bytes`` (default 4 GiB; ``None`` for no limit), so a
    small compressed file cannot make the loader allocate gigabytes. Other
    arrays in the file are not read.
    """
    if max_bytes is not None:
        max_bytes = check_positive_int("load_npz", max_bytes, "max_bytes")
    with Npz(path) as npz:
        missing = {"X", "y"} - set(npz.names)
        if missing:
            raise ValueError(f"{path}: expected arrays 'X' and 'y', missing {sorted(missing)} "
                             f"(found {abridged(npz.names)})")
        X, y = npz.entry("X"), npz.entry("y")
        if X.dtype.kind not in "iuf":
            raise ValueError(f"{path}: expected numeric X, got {X.dtype}")
        # Zero-strided stand-ins of the declared shapes: checked without allocating.
        check_pair(path, np.broadcast_to(np.zeros((), np.float32), X.shape),
                   np.broadcast_to(np.zeros((), y.dtype), y.shape))
        declared = X.nbytes + y.nbytes
        values, labels = X.nbytes // X.dtype.itemsize, y.nbytes // y.dtype.itemsize
        needed = (declared + (0 if X.dtype == np.float32 else 4 * values)
                  + (values if X.dtype.kind == "f" else 0) + (0 if y.dtype == np.int64 else 8 * labels))
        if max_bytes is not None and needed > max_bytes:
            raise ValueError(f"{path}: X and y declare {declared:,} bytes, {needed:,} with X as float32 and "
                             f"y as int64, over max_bytes={max_bytes:,} (pass a larger max_bytes to "
                             "load_npz, or None, to read it)")
        X, y = npz.read("X"), npz.read("y")
    if X.dtype.kind == "f":
        check_finite(os.fspath(path), X, "X")
    X = X.astype(np.float32, copy=False)
    check_pair(path, X, y)
    if y.dtype.kind == "u" and len(y) and y.max() > np.iinfo(np.int64).max:
        raise ValueError(f"{path}: expected labels that fit int64, got {y.max()} (a {y.dtype} label)")
    return X, y.astype(np.int64, copy=False)
