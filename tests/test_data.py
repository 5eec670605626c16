"""numtorch.data: the IDX reader on files the tests write, the loaders, the batch iterator."""

import gzip
import json
import os

import numpy as np
import pytest

from numtorch.data import Batches, load_digits, load_mnist, load_npz, mnist_splits, read_idx, train_test_split

MNIST_DIR = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "mnist-t10k")


def idx_bytes(array, type_code=0x08):
    """An IDX file's bytes: magic, big-endian sizes, big-endian values."""
    dtype = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}[type_code]
    header = bytes([0, 0, type_code, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    return header + np.asarray(array, dtype=dtype).tobytes()


def write(path, data, compress=False):
    with open(path, "wb") as file:
        file.write(gzip.compress(data) if compress else data)
    return path


def write_mnist(directory, split, n=5, rows=28, cols=28, compress=True, seed=0):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, rows, cols), dtype=np.uint8)
    labels = rng.integers(0, 10, size=n, dtype=np.uint8)
    prefix = {"train": "train", "test": "t10k"}[split]
    suffix = ".gz" if compress else ""
    write(directory / f"{prefix}-images-idx3-ubyte{suffix}", idx_bytes(images), compress)
    write(directory / f"{prefix}-labels-idx1-ubyte{suffix}", idx_bytes(labels), compress)
    return images, labels


@pytest.mark.parametrize("type_code,dtype", [(0x08, np.uint8), (0x09, np.int8), (0x0B, np.int16),
                                             (0x0C, np.int32), (0x0D, np.float32), (0x0E, np.float64)])
@pytest.mark.parametrize("compress", [False, True])
def test_read_idx_round_trips_every_type(tmp_path, type_code, dtype, compress):
    array = (np.arange(24).reshape(2, 3, 4) - 5).astype(dtype) if dtype != np.uint8 else \
        np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    path = write(tmp_path / "a.idx", idx_bytes(array, type_code), compress)
    result = read_idx(path)
    assert result.dtype == dtype and result.dtype.isnative
    np.testing.assert_array_equal(result, array)


@pytest.mark.parametrize("data,message", [
    (b"\x00\x00", "only 2 bytes"),
    (b"\x01\x00\x08\x01" + b"\x00" * 8, "not an IDX file"),
    (b"\x00\x00\x07\x01" + b"\x00" * 8, "not an IDX file"),
    (b"\x00\x00\x08\x00", "not an IDX file"),
    (b"\x00\x00\x08\x03\x00\x00\x00\x02", "truncated IDX header"),
    (idx_bytes(np.zeros((2, 3), np.uint8))[:-1], r"shape \(2, 3\) of uint8 \(18 bytes in all\).*17 bytes"),
    (idx_bytes(np.zeros((2, 3), np.uint8)) + b"\x00", "holds 19 bytes"),
], ids=["short", "magic", "type", "rank0", "header", "truncated", "trailing"])
def test_read_idx_rejects_corrupt_files(tmp_path, data, message):
    with pytest.raises(ValueError, match=message):
        read_idx(write(tmp_path / "bad", data))


def test_read_idx_rejects_corrupt_gzip(tmp_path):
    data = gzip.compress(idx_bytes(np.zeros((4, 4), np.uint8)))
    with pytest.raises(ValueError, match="corrupt gzip"):
        read_idx(write(tmp_path / "bad.gz", data[: len(data) // 2]))


@pytest.mark.parametrize("compress", [False, True])
def test_load_mnist_scales_and_shapes(tmp_path, compress):
    images, labels = write_mnist(tmp_path, "train", n=6, compress=compress)
    X, y = load_mnist(tmp_path, "train")
    assert X.dtype == np.float32 and X.shape == (6, 1, 28, 28)
    assert y.dtype == np.int64
    np.testing.assert_array_equal(X[:, 0] * 255, images.astype(np.float32))
    np.testing.assert_array_equal(y, labels)
    assert mnist_splits(tmp_path) == ["train"]


def test_load_mnist_accepts_dotted_names_and_fashion_sizes(tmp_path):
    images = np.full((3, 20, 24), 255, np.uint8)
    write(tmp_path / "t10k-images.idx3-ubyte", idx_bytes(images))
    write(tmp_path / "t10k-labels.idx1-ubyte", idx_bytes(np.array([0, 9, 3], np.uint8)))
    X, y = load_mnist(tmp_path, "test")
    assert X.shape == (3, 1, 20, 24) and X.max() == 1.0
    assert list(y) == [0, 9, 3]


def test_load_mnist_errors(tmp_path):
    with pytest.raises(ValueError, match="split 'train' or 'test'"):
        load_mnist(tmp_path, "validation")
    with pytest.raises(FileNotFoundError, match="not a directory"):
        load_mnist(tmp_path / "missing")
    with pytest.raises(FileNotFoundError, match="no train-images-idx3-ubyte"):
        load_mnist(tmp_path)
    write_mnist(tmp_path, "train", n=4)
    write(tmp_path / "train-labels-idx1-ubyte.gz", idx_bytes(np.zeros(3, np.uint8)), compress=True)
    with pytest.raises(ValueError, match="4 images but 3 labels"):
        load_mnist(tmp_path)
    write(tmp_path / "train-labels-idx1-ubyte.gz", idx_bytes(np.full(4, 10, np.uint8)), compress=True)
    with pytest.raises(ValueError, match="labels 0..9, got 10"):
        load_mnist(tmp_path)
    write(tmp_path / "train-labels-idx1-ubyte.gz", idx_bytes(np.zeros((4, 1), np.uint8)), compress=True)
    with pytest.raises(ValueError, match=r"expected uint8 labels \(N,\)"):
        load_mnist(tmp_path)
    write(tmp_path / "train-images-idx3-ubyte.gz", idx_bytes(np.zeros((4, 2), np.uint8)), compress=True)
    with pytest.raises(ValueError, match=r"expected uint8 images \(N, rows, cols\)"):
        load_mnist(tmp_path)


@pytest.mark.skipif(not os.path.isdir(MNIST_DIR), reason="../shared/data/mnist-t10k not present")
def test_load_mnist_real_t10k():
    X, y = load_mnist(MNIST_DIR, "test")
    assert X.shape == (10000, 1, 28, 28) and X.min() == 0 and X.max() == 1
    assert list(y[:5]) == [7, 2, 1, 0, 4]
    assert np.bincount(y).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_load_digits_is_a_fixed_split():
    (X_train, y_train), (X_test, y_test) = load_digits()
    assert X_train.shape == (1438, 1, 8, 8) and X_test.shape == (359, 1, 8, 8)
    assert X_train.dtype == np.float32 and y_train.dtype == np.int64
    assert X_train.min() == 0 and X_train.max() == 1
    (X_again, _), _ = load_digits()
    np.testing.assert_array_equal(X_train, X_again)
    (X_other, _), _ = load_digits(seed=1)
    assert not np.array_equal(X_train, X_other)
    assert set(np.unique(y_test)) == set(range(10))


def test_train_test_split_partitions():
    X = np.arange(20, dtype=np.float32).reshape(10, 2)
    y = np.arange(10)
    (X_train, y_train), (X_test, y_test) = train_test_split(X, y, 0.3, seed=4)
    assert len(y_test) == 3 and len(y_train) == 7
    assert sorted(np.concatenate([y_train, y_test])) == list(range(10))
    np.testing.assert_array_equal(X_train[:, 0], 2 * y_train)
    with pytest.raises(ValueError, match="test_fraction in"):
        train_test_split(X, y, 1.0)
    with pytest.raises(ValueError, match="cannot be split"):
        train_test_split(X[:1], y[:1], 0.5)


def test_load_npz(tmp_path):
    X = np.arange(12, dtype=np.uint8).reshape(3, 4)
    np.savez(tmp_path / "d.npz", X=X, y=np.array([0, 1, 1], np.int32))
    X_loaded, y = load_npz(tmp_path / "d.npz")
    assert X_loaded.dtype == np.float32 and y.dtype == np.int64
    np.testing.assert_array_equal(X_loaded, X)


@pytest.mark.parametrize("arrays,error,message", [
    ({"X": np.zeros((3, 2))}, ValueError, r"missing \['y'\]"),
    ({"X": np.zeros((3, 2)), "y": np.zeros(2, np.int64)}, ValueError, "3 samples but y has 2"),
    ({"X": np.zeros((3, 2)), "y": np.zeros(3)}, TypeError, "integer labels"),
    ({"X": np.zeros((3, 2)), "y": np.array([0, -1, 0])}, ValueError, "non-negative labels"),
    ({"X": np.full((3, 2), np.nan), "y": np.zeros(3, np.int64)}, ValueError, "NaN"),
    ({"X": np.array(["a", "b"]), "y": np.zeros(2, np.int64)}, ValueError, "numeric X"),
    ({"X": np.zeros(3), "y": np.zeros(3, np.int64)}, TypeError, r"float array \(N, ...\)"),
])
def test_load_npz_rejects_bad_content(tmp_path, arrays, error, message):
    np.savez(tmp_path / "d.npz", **arrays)
    with pytest.raises(error, match=message):
        load_npz(tmp_path / "d.npz")


def test_load_npz_refuses_pickled_objects_and_garbage(tmp_path):
    np.savez(tmp_path / "obj.npz", X=np.array([{"a": 1}], dtype=object), y=np.zeros(1, np.int64))
    with pytest.raises(ValueError, match="not a readable .npz"):
        load_npz(tmp_path / "obj.npz")
    write(tmp_path / "junk.npz", b"not a zip file")
    with pytest.raises(ValueError, match="not a readable .npz"):
        load_npz(tmp_path / "junk.npz")
    np.save(tmp_path / "single.npy", np.zeros(3))
    with pytest.raises(ValueError, match="not a readable .npz.*single .npy array"):
        load_npz(tmp_path / "single.npy")
    with pytest.raises(FileNotFoundError, match="no such file"):
        load_npz(tmp_path / "missing.npz")


def test_batches_cover_every_sample_once_per_epoch():
    X = np.arange(10, dtype=np.float32)[:, None]
    y = np.arange(10)
    batches = Batches(X, y, 4, seed=3)
    assert len(batches) == 3
    epochs = [[yb.tolist() for _, yb in batches] for _ in range(2)]
    for epoch in epochs:
        assert [len(b) for b in epoch] == [4, 4, 2]
        assert sorted(sum(epoch, [])) == list(range(10))
    assert epochs[0] != epochs[1]
    for xb, yb in batches:
        np.testing.assert_array_equal(xb[:, 0], yb)
    assert [yb.tolist() for _, yb in Batches(X, y, 4, shuffle=False)] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]


def test_batches_are_seeded_and_resumable():
    X, y = np.zeros((9, 1), np.float32), np.arange(9)

    def orders(batches, epochs):
        return [np.concatenate([yb for _, yb in batches]).tolist() for _ in range(epochs)]

    assert orders(Batches(X, y, 2, seed=5), 3) == orders(Batches(X, y, 2, seed=5), 3)
    assert orders(Batches(X, y, 2, seed=5), 1) != orders(Batches(X, y, 2, seed=6), 1)
    first = Batches(X, y, 2, seed=5)
    orders(first, 2)
    resumed = Batches(X, y, 2, seed=99)
    resumed.load_state_dict(first.state_dict())
    assert orders(resumed, 2) == orders(first, 2)
    with pytest.raises(ValueError, match="not a Batches state"):
        resumed.load_state_dict({"rng": {"bit_generator": "MT19937"}})


def test_batches_resume_inside_a_pass():
    """A state taken after k batches of a pass continues that pass at batch k + 1, then draws the
    orders an uninterrupted iterator draws; a state between passes says batch 0."""
    X, y = np.zeros((9, 1), np.float32), np.arange(9)
    whole = Batches(X, y, 2, seed=5)
    expected = [[yb.tolist() for _, yb in whole] for _ in range(3)]
    assert whole.state_dict()["batch"] == 0
    for k in range(len(whole)):
        stopped = Batches(X, y, 2, seed=5)
        assert [yb.tolist() for _, yb in stopped] == expected[0]
        passing = iter(stopped)
        for _ in range(k + 1):
            next(passing)
        state = stopped.state_dict()
        assert state["batch"] == (k + 1) % len(whole)
        resumed = Batches(X, y, 2, seed=99)
        resumed.load_state_dict(json.loads(json.dumps(state)))
        if state["batch"]:
            assert [yb.tolist() for _, yb in resumed] == expected[1][k + 1:]
        assert [yb.tolist() for _, yb in resumed] == expected[2]
    with pytest.raises(ValueError, match=r"expected state\['batch'\] < 5 \(the batches of a pass\), got 5"):
        resumed.load_state_dict({**state, "batch": 5})
    with pytest.raises(TypeError, match=r"expected state\['batch'\] as an int, got"):
        resumed.load_state_dict({**state, "batch": "2"})


def test_batches_validate_arguments():
    X, y = np.zeros((4, 1), np.float32), np.zeros(4, np.int64)
    with pytest.raises(ValueError, match="batch_size >= 1"):
        Batches(X, y, 0)
    with pytest.raises(TypeError, match="batch_size as an int"):
        Batches(X, y, 2.0)
    with pytest.raises(ValueError, match="4 samples but y has 3"):
        Batches(X, y[:3], 2)


def test_load_npz_size_limit(tmp_path):
    X, y = np.ones((10, 3), np.uint8), np.arange(10)
    np.savez(tmp_path / "d.npz", X=X, y=y)
    stored = X.nbytes + y.nbytes
    needed = stored + 4 * X.size  # X as stored and as float32 (y is int64 already)
    assert load_npz(tmp_path / "d.npz", max_bytes=needed)[0].shape == (10, 3)
    assert load_npz(tmp_path / "d.npz", max_bytes=None)[0].shape == (10, 3)
    with pytest.raises(ValueError, match=rf"X and y declare {stored} bytes, {needed} with X as float32 and "
                                         rf"y as int64, over max_bytes={needed - 1}"):
        load_npz(tmp_path / "d.npz", max_bytes=needed - 1)
    for bad, error in ((0, ValueError), (-5, ValueError), (1.5, TypeError), (True, TypeError)):
        with pytest.raises(error, match="load_npz: expected max_bytes"):
            load_npz(tmp_path / "d.npz", max_bytes=bad)
