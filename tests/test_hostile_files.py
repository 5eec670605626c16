"""Hostile and broken files: ``numtorch.load`` and ``numtorch.data.load_mnist`` fail cleanly.

The documented contract: a file that is not what it claims to be (truncated,
random bytes, pickled objects, an architecture naming unknown classes or
disagreeing with its arrays, an IDX file with a wrong magic number or size)
raises ``ValueError`` with the path and what is wrong; a missing file raises
``FileNotFoundError``. Nothing in a file is ever executed. A fuzz test feeds
mutated (bit-flipped, truncated, spliced) valid files to both loaders and
accepts only those outcomes.
"""

import gzip
import io as stdio
import json
import math
import os
import pathlib
import re
import tracemalloc
import zipfile
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import numtorch
from numtorch import io
from numtorch.data import load_mnist, load_npz

HEADER = "__numtorch__"


def small_model():
    numtorch.manual_seed(0)
    return numtorch.Sequential(numtorch.Linear(4, 3), numtorch.ReLU(), numtorch.Linear(3, 2))


def model_file(tmp_path):
    path = tmp_path / "model.npz"
    io.save(small_model(), path)
    return path


def entries(path):
    with np.load(path, allow_pickle=False) as archive:
        return {name: archive[name] for name in archive.files}


def rewrite(path, meta=None, **arrays):
    """The model file at ``path`` with its JSON header replaced by ``meta`` and ``arrays`` set."""
    stored = entries(path)
    if meta is not None:
        stored[HEADER] = np.array(meta if isinstance(meta, str) else json.dumps(meta))
    stored.update(arrays)
    np.savez(path, **stored)


def header(path):
    return json.loads(str(entries(path)[HEADER]))


class CreatesMarker:
    """Unpickling this object creates the marker file: proof that a loader ran a pickle."""

    def __init__(self, marker):
        self.marker = pathlib.Path(marker)

    def __reduce__(self):
        return pathlib.Path.touch, (self.marker,)


def test_the_marker_object_really_runs_when_unpickled(tmp_path):
    marker = tmp_path / "ran"
    np.save(tmp_path / "evil.npy", np.array([CreatesMarker(marker)], dtype=object), allow_pickle=True)
    np.load(tmp_path / "evil.npy", allow_pickle=True)
    assert marker.exists()


@pytest.mark.parametrize("where", ["header", "array", "extra-entry"])
def test_pickled_objects_are_refused_and_never_run(tmp_path, where):
    path = model_file(tmp_path)
    marker = tmp_path / "ran"
    evil = np.array([CreatesMarker(marker)], dtype=object)
    stored = entries(path)
    key = {"header": HEADER, "array": "model/0.W", "extra-entry": "model/evil"}[where]
    stored[key] = evil
    np.savez(path, **stored)
    with pytest.raises(ValueError, match=str(path)):
        numtorch.load(path)
    assert not marker.exists(), "loading the file ran code from it"


def test_a_pickled_npy_is_refused_and_never_runs(tmp_path):
    path, marker = tmp_path / "model.npz", tmp_path / "ran"
    with open(path, "wb") as file:
        np.save(file, np.array([CreatesMarker(marker)], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match=str(path)):
        numtorch.load(path)
    assert not marker.exists()


@pytest.mark.parametrize("fraction", [0.0, 0.02, 0.3, 0.6, 0.95, 0.999])
def test_truncated_file(tmp_path, fraction):
    path = model_file(tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * fraction)])
    with pytest.raises(ValueError, match=str(path)):
        numtorch.load(path)


@pytest.mark.parametrize("size", [1, 100, 10_000])
def test_random_bytes(tmp_path, size):
    path = tmp_path / "model.npz"
    path.write_bytes(np.random.default_rng(size).bytes(size))
    with pytest.raises(ValueError, match=str(path)):
        numtorch.load(path)


def test_random_bytes_behind_a_zip_signature(tmp_path):
    path = tmp_path / "model.npz"
    path.write_bytes(b"PK\x03\x04" + np.random.default_rng(0).bytes(2000))
    with pytest.raises(ValueError, match=str(path)):
        numtorch.load(path)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        numtorch.load(tmp_path / "absent.npz")


def test_a_directory_is_not_a_model(tmp_path):
    with pytest.raises((ValueError, IsADirectoryError)) as error:
        numtorch.load(tmp_path)
    assert str(tmp_path) in str(error.value)


def npy_entry(shape, payload, descr="<f4"):
    """The bytes of a ``.npy`` entry whose header declares ``shape`` but which holds ``payload``."""
    buffer = stdio.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": descr, "fortran_order": False, "shape": shape})
    return buffer.getvalue() + payload


@pytest.mark.parametrize("shape", [(10**12,), (2**40, 2**40), (10**9,), (5,)],
                         ids=["terabytes", "overflowing", "gigabytes", "a-little-more"])
def test_an_entry_declaring_more_than_it_holds_is_refused_before_allocating(tmp_path, shape):
    path = model_file(tmp_path)
    np.savez(path, **{key: value for key, value in entries(path).items() if key != "model/0.W"})
    with zipfile.ZipFile(path, "a") as archive:
        archive.writestr("model/0.W.npy", npy_entry(shape, bytes(16)))
    with pytest.raises(ValueError, match="declares shape"):
        numtorch.load(path)


def test_an_entry_that_is_not_npy_is_refused(tmp_path):
    path = model_file(tmp_path)
    with zipfile.ZipFile(path, "a") as archive:
        archive.writestr("model/0.W", b"raw bytes, not an array")
    with pytest.raises(ValueError, match=str(path)):
        numtorch.load(path)


def central_directory_edit(offset, value):
    """Set one byte of the first central-directory record (8: flags, 10: compression method)."""
    def edit(data):
        start = data.find(b"PK\x01\x02")
        return data[:start + offset] + bytes([value]) + data[start + offset + 1:]

    return edit


@pytest.mark.parametrize("edit", [central_directory_edit(10, 99), central_directory_edit(10, 12),
                                  central_directory_edit(8, 1)],
                         ids=["unknown-compression", "bzip2-claimed", "encrypted-flag"])
def test_zip_flags_that_zipfile_cannot_handle(tmp_path, edit):
    path = model_file(tmp_path)
    path.write_bytes(edit(path.read_bytes()))
    with pytest.raises(ValueError, match=str(path)):
        numtorch.load(path)


def edit_architecture(edit):
    def apply(meta):
        edit(meta["architecture"])
        return meta

    return apply


def set_child(index, **changes):
    return edit_architecture(lambda arch: arch["children"][index].update(changes))


HOSTILE_HEADERS = {
    "unknown-class": (set_child(1, **{"class": "Frobnicate"}), "unknown layer 'Frobnicate'"),
    "builtin-name": (set_child(1, **{"class": "system"}), "unknown layer 'system'"),
    "dotted-name": (set_child(1, **{"class": "os.system"}), "unknown layer 'os.system'"),
    "non-module-class": (set_child(1, **{"class": "Criterion"}), "unknown layer 'Criterion'"),
    "class-not-a-string": (set_child(1, **{"class": ["ReLU"]}), "malformed architecture"),
    "argument-of-wrong-type": (set_child(0, args={"n_in": "four", "n_out": 3}), "n_in"),
    "argument-out-of-range": (set_child(0, args={"n_in": -4, "n_out": 3}), "n_in >= 1"),
    "unknown-argument": (set_child(0, args={"n_in": 4, "n_out": 3, "evil": 1}), "no argument 'evil'"),
    "shape-disagrees": (set_child(0, args={"n_in": 5, "n_out": 3}), r"\(3, 4\) in the file"),
    "extra-layer": (edit_architecture(lambda a: a["children"].append({"class": "Linear",
                                                                      "args": {"n_in": 2, "n_out": 2}})),
                    "missing"),
    "layer-removed": (edit_architecture(lambda a: a["children"].pop()), "unexpected"),
    "architecture-missing": (lambda meta: {k: v for k, v in meta.items() if k != "architecture"},
                             "architecture"),
    "architecture-not-a-dict": (lambda meta: {**meta, "architecture": 3}, "malformed architecture"),
    "header-not-json": (lambda meta: "{not json", "header"),
    "header-a-list": (lambda meta: json.dumps([1, 2]), "not a numtorch file"),
    "version": (lambda meta: {**meta, "version": 2}, "version 2"),
    "module-encoded-argument": (set_child(0, args={"n_in": {"__module__": {"class": "ReLU", "args": {}}},
                                                   "n_out": 3}), "n_in"),
    "unknown-encoding": (set_child(0, args={"n_in": {"__evil__": 1}, "n_out": 3}), "encoding"),
}


@pytest.mark.parametrize("kind", sorted(HOSTILE_HEADERS))
def test_hostile_architecture(tmp_path, kind):
    edit, message = HOSTILE_HEADERS[kind]
    path = model_file(tmp_path)
    rewrite(path, edit(header(path)))
    with pytest.raises(ValueError, match=message) as error:
        numtorch.load(path)
    assert str(path) in str(error.value)


def test_deeply_nested_architecture(tmp_path):
    """A header nested far beyond any network (a recursion bomb) is refused, not a RecursionError."""
    path = model_file(tmp_path)
    depth = 100_000
    nested = '{"class": "Sequential", "children": [' * depth + "]}" * depth
    meta = header(path)
    text = json.dumps(meta).replace(json.dumps(meta["architecture"]), nested)
    rewrite(path, text)
    with pytest.raises(ValueError, match=str(path)):
        numtorch.load(path)


@pytest.mark.parametrize("array", [
    np.zeros((3, 4), np.int64),
    np.zeros((3, 4), np.complex64),
    np.array(["abc"] * 12).reshape(3, 4),
    np.zeros((3, 4), [("a", np.float32)]),
], ids=["int", "complex", "string", "structured"])
def test_array_of_another_dtype(tmp_path, array):
    path = model_file(tmp_path)
    rewrite(path, **{"model/0.W": array})
    with pytest.raises(ValueError, match=str(path)):
        numtorch.load(path)


# IDX files.

def idx_bytes(array, type_code=0x08):
    dtype = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}[type_code]
    header = bytes([0, 0, type_code, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    return header + np.asarray(array, dtype=dtype).tobytes()


def mnist_files(n=6, rows=4, cols=3, seed=0):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, rows, cols), dtype=np.uint8)
    labels = rng.integers(0, 10, size=n, dtype=np.uint8)
    return {"images": idx_bytes(images), "labels": idx_bytes(labels)}


def write_mnist(directory, files, compress):
    names = {"images": "train-images-idx3-ubyte", "labels": "train-labels-idx1-ubyte"}
    for kind, data in files.items():
        name = names[kind] + (".gz" if compress else "")
        (directory / name).write_bytes(gzip.compress(data, mtime=0) if compress else data)


def test_valid_idx_files_load(tmp_path):
    write_mnist(tmp_path, mnist_files(), compress=True)
    X, y = load_mnist(tmp_path)
    assert X.shape == (6, 1, 4, 3) and y.shape == (6,)


def with_header(data, header):
    return header + data[len(header):]


HOSTILE_IDX = {
    "images-magic": ("images", lambda d: b"\x12\x34" + d[2:], "magic number"),
    "images-type-code": ("images", lambda d: d[:2] + b"\x07" + d[3:], "magic number"),
    "images-rank-0": ("images", lambda d: d[:3] + b"\x00" + d[4:], "magic number"),
    "images-rank-255": ("images", lambda d: d[:3] + b"\xff" + d[4:], "IDX"),
    "images-rank-1": ("images", lambda d: idx_bytes(np.zeros(72, np.uint8)), "images"),
    "images-float": ("images", lambda d: idx_bytes(np.zeros((6, 4, 3)), 0x0D), "uint8"),
    "images-size-too-large": ("images", lambda d: d[:4] + np.array([7], ">u4").tobytes() + d[8:], "bytes"),
    "images-size-huge": ("images", lambda d: d[:4] + np.array([2**32 - 1], ">u4").tobytes() + d[8:],
                         "bytes"),
    "images-all-sizes-huge": ("images", lambda d: d[:4] + np.array([2**32 - 1] * 3, ">u4").tobytes()
                              + d[16:], "bytes"),
    "images-size-zero": ("images", lambda d: d[:4] + np.array([0], ">u4").tobytes() + d[8:], "bytes"),
    "images-truncated-data": ("images", lambda d: d[:-1], "bytes"),
    "images-extra-data": ("images", lambda d: d + b"\x00", "bytes"),
    "images-truncated-header": ("images", lambda d: d[:9], "header"),
    "images-empty": ("images", lambda d: b"", "bytes"),
    "labels-magic": ("labels", lambda d: b"\x08\x03" + d[2:], "magic number"),
    "labels-count": ("labels", lambda d: idx_bytes(np.zeros(5, np.uint8)), "5 labels"),
    "labels-out-of-range": ("labels", lambda d: idx_bytes(np.full(6, 10, np.uint8)), "labels 0..9"),
    "labels-rank-2": ("labels", lambda d: idx_bytes(np.zeros((6, 1), np.uint8)), "labels"),
    "labels-signed": ("labels", lambda d: idx_bytes(np.full(6, -1, np.int8), 0x09), "uint8"),
}


@pytest.mark.parametrize("compress", [False, True], ids=["raw", "gzip"])
@pytest.mark.parametrize("kind", sorted(HOSTILE_IDX))
def test_hostile_idx(tmp_path, kind, compress):
    which, edit, message = HOSTILE_IDX[kind]
    files = mnist_files()
    files[which] = edit(files[which])
    write_mnist(tmp_path, files, compress)
    with pytest.raises(ValueError, match=message) as error:
        load_mnist(tmp_path)
    assert str(tmp_path) in str(error.value)


@pytest.mark.parametrize("data", [b"\x1f\x8b", b"\x1f\x8b" + bytes(30), gzip.compress(b"x" * 100)[:-5]],
                         ids=["magic-only", "zeros", "truncated"])
def test_corrupt_gzip(tmp_path, data):
    files = mnist_files()
    write_mnist(tmp_path, {"labels": files["labels"]}, compress=False)
    (tmp_path / "train-images-idx3-ubyte").write_bytes(data)
    with pytest.raises(ValueError, match="train-images-idx3-ubyte"):
        load_mnist(tmp_path)


# Fuzzing: mutated valid files give a result or a documented error, nothing else.

def mutations():
    """A list of edits to a file's bytes: bit flips, byte overwrites, truncation, insertion, deletion.

    Positions are relative; a third of them fall in the first or last 5%, where
    the headers are (the zip central directory is at the end of an .npz).
    """
    position = st.one_of(st.floats(0, 1, exclude_max=True), st.floats(0, 0.05),
                         st.floats(0.95, 1, exclude_max=True))
    flip = st.tuples(st.just("flip"), position, st.integers(0, 7))
    overwrite = st.tuples(st.just("set"), position, st.integers(0, 255))
    cut = st.tuples(st.just("cut"), position, st.just(0))
    insert = st.tuples(st.just("insert"), position, st.integers(0, 255))
    delete = st.tuples(st.just("delete"), position, st.integers(1, 16))
    return st.lists(st.one_of(flip, flip, overwrite, cut, insert, delete), min_size=1, max_size=4)


def mutate(data, edits):
    data = bytearray(data)
    for kind, where, value in edits:
        if not data:
            break
        i = int(where * len(data))
        if kind == "flip":
            data[i] ^= 1 << value
        elif kind == "set":
            data[i] = value
        elif kind == "cut":
            del data[i:]
        elif kind == "insert":
            data.insert(i, value)
        else:
            del data[i:i + value]
    return bytes(data)


FUZZ = settings(max_examples=150, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@FUZZ
@given(edits=mutations())
def test_fuzz_load(tmp_path_factory, edits):
    directory = tmp_path_factory.mktemp("fuzz")
    path = model_file(directory)
    path.write_bytes(mutate(path.read_bytes(), edits))
    try:
        model = numtorch.load(path)
    except ValueError as error:
        assert str(path) in str(error)
        return
    assert isinstance(model, numtorch.Module)


@FUZZ
@given(edits=mutations())
def test_fuzz_load_npz(tmp_path_factory, edits):
    directory = tmp_path_factory.mktemp("fuzz")
    path = directory / "data.npz"
    X, y = np.random.default_rng(0).random((6, 4)), np.arange(6)
    np.savez(path, X=X, y=y)
    path.write_bytes(mutate(path.read_bytes(), edits))
    try:
        X, y = load_npz(path)
    except ValueError as error:
        assert str(path) in str(error)
        return
    except TypeError as error:  # arrays of the wrong kind, e.g. y no longer an integer array
        assert str(path) in str(error)
        return
    assert X.dtype == np.float32 and len(X) == len(y)


@FUZZ
@given(edits=mutations(), which=st.sampled_from(["images", "labels"]), compress=st.booleans())
def test_fuzz_load_mnist(tmp_path_factory, edits, which, compress):
    directory = tmp_path_factory.mktemp("fuzz")
    files = mnist_files()
    data = gzip.compress(files[which], mtime=0) if compress else files[which]
    write_mnist(directory, {k: v for k, v in files.items() if k != which}, compress)
    name = {"images": "train-images-idx3-ubyte", "labels": "train-labels-idx1-ubyte"}[which]
    (directory / (name + (".gz" if compress else ""))).write_bytes(mutate(data, edits))
    try:
        X, y = load_mnist(directory)
    except ValueError as error:
        assert str(directory) in str(error)
        return
    assert X.dtype == np.float32 and X.ndim == 4 and len(X) == len(y) and y.max() <= 9


def test_mutate_edits_what_it_says():
    assert mutate(b"\x00\x00", [("flip", 0.5, 3)]) == b"\x00\x08"
    assert mutate(b"abcd", [("cut", 0.5, 0)]) == b"ab"
    assert mutate(b"abcd", [("delete", 0.25, 2)]) == b"ad"
    assert mutate(b"ab", [("insert", 0.5, 0x7A)]) == b"azb"
    assert mutate(b"ab", [("set", 0.0, 0x7A)]) == b"zb"


# Decompression bombs: entries that honestly declare far more than the model holds.

BOMB_SHAPE = (5000, 5000)  # 100 MB of float32, deflated to about 100 KB
SMALL = 10 * 2**20  # bytes a refused file may make the loader allocate at most


def add_bomb(path, name, shape=BOMB_SHAPE, descr="<f4", drop=()):
    """Rewrite ``path`` without the entries ``drop``, plus a deflated entry ``name`` of zeros of ``shape``."""
    stored = {key: value for key, value in entries(path).items() if key not in drop and key != name}
    np.savez(path, **stored)
    dtype = np.dtype(descr)
    with zipfile.ZipFile(path, "a", zipfile.ZIP_DEFLATED) as archive:
        with archive.open(name + ".npy", "w", force_zip64=True) as entry:
            np.lib.format.write_array_header_1_0(entry, {"descr": dtype.str, "fortran_order": False,
                                                         "shape": shape})
            remaining, chunk = math.prod(shape) * dtype.itemsize, bytes(2**20)
            while remaining:
                entry.write(chunk[:remaining])
                remaining -= min(remaining, len(chunk))
    assert path.stat().st_size < SMALL / 10
    return path


def peak_allocation(call, *args):
    """The ValueError ``call(*args)`` raises and the peak bytes it allocated meanwhile."""
    tracemalloc.start()
    try:
        with pytest.raises(ValueError) as error:
            call(*args)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return error.value, peak


def lazy_model_file(tmp_path):
    path = tmp_path / "lazy.npz"
    io.save(numtorch.Sequential(numtorch.Linear(4, 3), numtorch.BatchNormalization(0.9)), path)
    return path


BOMBS = {
    "weight-of-another-shape": (model_file, dict(name="model/0.W"), r"\(5000, 5000\) in the file"),
    "extra-entry": (model_file, dict(name="model/9.W"), r"unexpected \['model/9.W'\]"),
    "replacing-an-entry": (model_file, dict(name="model/a", drop=("model/2.b",)), r"missing \['model/2.b'\]"),
    "not-a-model-entry": (model_file, dict(name="other"), r"unexpected entries \['other'\]"),
    "lazy-buffer": (lazy_model_file, dict(name="model/1.moving_mean", shape=(25_000_000,)), "moving_mean"),
    "header": (model_file, dict(name=HEADER, shape=(), descr="<U25000000"), "header"),
}


@pytest.mark.parametrize("kind", sorted(BOMBS))
def test_a_decompression_bomb_is_refused_before_allocating(tmp_path, kind):
    make, bomb, message = BOMBS[kind]
    path = add_bomb(make(tmp_path), **bomb)
    error, peak = peak_allocation(numtorch.load, path)
    assert str(path) in str(error) and re.search(message, str(error)), error
    assert peak < SMALL, f"refusing a {path.stat().st_size}-byte file allocated {peak} bytes"


def test_an_optimizer_bomb_in_a_checkpoint_is_refused_before_allocating(tmp_path):
    net = small_model()
    optimizer = numtorch.optim.Adam(net)
    optimizer.zero_grad()
    net.backward(np.ones((2, 4), np.float32), net.forward(np.ones((2, 4), np.float32)))
    optimizer.step()
    path = tmp_path / "checkpoint.npz"
    io.save_checkpoint(path, net, optimizer, 1)
    add_bomb(path, "optimizer/exp_avg/0")
    error, peak = peak_allocation(io.load_checkpoint, path, small_model(), numtorch.optim.Adam(small_model()))
    assert str(path) in str(error) and "optimizer/exp_avg/0" in str(error), error
    assert peak < SMALL


def test_a_dataset_bomb_is_refused_before_allocating(tmp_path):
    path = tmp_path / "data.npz"
    np.savez(path, y=np.zeros(3, np.int64))
    add_bomb(path, "X")
    error, peak = peak_allocation(load_npz, path)
    assert str(path) in str(error) and "5000 samples but y has 3" in str(error), error
    assert peak < SMALL


@pytest.mark.parametrize("array,message", [
    (np.zeros((2, 2), np.int64), "float"),
    (np.array(["a", "b", "c"]), "float"),
    (np.zeros((3, 1), np.float32), "1-D"),
    (np.zeros(5, np.float32), "length"),
], ids=["int64-matrix", "strings", "2-D", "other-length"])
def test_lazily_created_statistics_from_a_file_are_checked(tmp_path, array, message):
    path = lazy_model_file(tmp_path)
    rewrite(path, **{"model/1.moving_mean": np.zeros(3, np.float32),
                     "model/1.moving_variance": np.ones(3, np.float32)})
    numtorch.load(path)
    rewrite(path, **{"model/1.moving_variance": array})
    with pytest.raises(ValueError, match=message) as error:
        numtorch.load(path)
    assert str(path) in str(error.value) and "moving_variance" in str(error.value)


def gzip_of(head, zeros):
    """``head`` then ``zeros`` zero bytes, gzip-compressed a megabyte at a time."""
    compressor = zlib.compressobj(wbits=31)
    parts, chunk = [compressor.compress(head)], bytes(2**20)
    while zeros:
        parts.append(compressor.compress(chunk[:zeros]))
        zeros -= min(zeros, len(chunk))
    return b"".join(parts) + compressor.flush()


def idx_header(shape):
    return bytes([0, 0, 0x08, len(shape)]) + np.asarray(shape, ">u4").tobytes()


@pytest.mark.parametrize("shape,message", [
    ((6, 4, 3), r"more than 88 bytes"),
    ((2**16, 2**15, 2**2), r"limit"),
], ids=["trailing-zeros", "declares-over-the-limit"])
def test_a_gzip_bomb_is_refused_before_allocating(tmp_path, shape, message):
    files = mnist_files()
    write_mnist(tmp_path, {"labels": files["labels"]}, compress=False)
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(gzip_of(idx_header(shape), 100 * 2**20))
    assert path.stat().st_size < SMALL / 10
    error, peak = peak_allocation(load_mnist, tmp_path)
    assert str(path) in str(error) and re.search(message, str(error)), error
    assert peak < SMALL, f"refusing a {path.stat().st_size}-byte file allocated {peak} bytes"


def test_an_idx_file_the_size_of_the_mnist_training_set_loads(tmp_path):
    labels = np.arange(60_000, dtype=np.uint8) % 10
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(gzip_of(idx_header((60_000, 28, 28)), 60_000 * 784))
    (tmp_path / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_bytes(labels), mtime=0))
    X, y = load_mnist(tmp_path)
    assert X.shape == (60_000, 1, 28, 28) and not X.any()
    np.testing.assert_array_equal(y, labels)


def test_a_consistent_dataset_bomb_is_refused_by_the_size_limit_before_allocating(tmp_path):
    # X and y agree (5000 samples), so only the declared size can give the file away.
    path = tmp_path / "data.npz"
    np.savez(path, y=np.zeros(5000, np.int64))
    add_bomb(path, "X")
    error, peak = peak_allocation(lambda p: load_npz(p, max_bytes=2**20), path)
    assert str(path) in str(error) and "max_bytes" in str(error), error
    assert "100,040,000 bytes" in str(error), error
    assert peak < SMALL


# Second round (issue 15): refuse before allocating, fail without side effects.

def files_in(directory):
    """Every file under ``directory`` and its bytes: what a refused load must leave as it was."""
    return {path: path.read_bytes() for path in pathlib.Path(directory).rglob("*") if path.is_file()}


def refuse_load(path, edit, **load_options):
    """Rewrite the model at ``path`` with ``edit(header)`` and return the error and peak of loading it."""
    rewrite(path, edit(header(path)))
    before = files_in(path.parent)
    error, peak = peak_allocation(lambda p: numtorch.load(p, **load_options), path)
    assert files_in(path.parent) == before
    assert str(path) in str(error), error
    return error, peak


def replace_architecture(spec):
    return lambda meta: {**meta, "architecture": spec}


def layer(name, **args):
    return {"class": name, "args": args}


def network(first, *after):
    """The small model's architecture with ``first`` for its first layer and ``after`` appended."""
    children = [first, layer("ReLU"), layer("Linear", n_in=3, n_out=2), *after]
    return replace_architecture({"class": "Sequential", "args": {}, "children": children})


@pytest.mark.parametrize("edit,message", [
    (network(layer("Linear", n_in=20000, n_out=20000)),
     r"0.W of Linear\(n_in=20000, n_out=20000\) has shape \(3, 4\) in the file, "
     r"the model expects \(20000, 20000\)"),
    (network(layer("Linear", n_in=100000, n_out=100000)), r"expects \(100000, 100000\)"),
    (network(layer("Conv2d", in_channels=4, out_channels=3, kernel_size=30000)),
     r"expects \(3, 4, 30000, 30000\)"),
    (network(layer("Linear", n_in=4, n_out=3), layer("BatchNormalization", n_features=10**9)),
     r"missing \['model/3.moving_mean', 'model/3.moving_variance'\]"),
], ids=["Linear-20000", "Linear-100000", "Conv2d-kernel-30000", "BatchNormalization-1e9"])
def test_declared_sizes_are_checked_against_the_file_before_any_constructor_runs(tmp_path, edit, message):
    """A small file whose JSON declares a huge layer (15: 1): refused from the headers, nothing built."""
    error, peak = refuse_load(model_file(tmp_path), edit)
    assert re.search(message, str(error)), error
    assert peak < SMALL, f"refusing allocated {peak} bytes"


@pytest.mark.parametrize("child,args,message", [
    (1, None, None),
    (0, {"n_in": 2.5, "n_out": 3}, r"Linear: expected n_in as an int, got float 2.5"),
    (0, {"n_in": "four", "n_out": 3}, r"Linear: expected n_in as an int, got str 'four'"),
    (0, {"n_in": 4}, r"missing a required argument: 'n_out'"),
], ids=["valid", "float", "string", "missing"])
def test_constructor_arguments_from_a_file_are_checked_as_the_constructor_would(tmp_path, child, args,
                                                                                 message):
    path = model_file(tmp_path)
    if args is None:
        assert isinstance(numtorch.load(path), numtorch.Sequential)
        return
    error, peak = refuse_load(path, set_child(child, args=args))
    assert re.search(message, str(error)) and "cannot rebuild the model" in str(error), error
    assert peak < SMALL


@pytest.mark.parametrize("name,args,message", [
    ("BatchNormalization", {"n_features": "abc"},
     r"BatchNormalization: expected n_features as an int, got str"),
    ("BatchNormalization", {"n_features": -3}, r"BatchNormalization: expected n_features >= 1, got -3"),
    ("Dropout", {"p": 5}, r"Dropout: expected p in \[0, 1\), got 5.0"),
    ("LeakyReLU", {"slope": "steep"}, r"LeakyReLU: expected slope as a number, got str 'steep'"),
    ("Conv2d", {"in_channels": 1, "out_channels": 1, "kernel_size": [1, 2, 3]},
     r"Conv2d: expected kernel_size"),
    ("MaxPool2d", {"kernel_size": 2, "padding": 9}, r"MaxPool2d: expected padding at most half the kernel"),
])
def test_hyper_parameters_from_a_file_are_checked_as_the_constructor_would(tmp_path, name, args, message):
    error, peak = refuse_load(model_file(tmp_path), set_child(1, **{"class": name, "args": args}))
    assert re.search(message, str(error)), error
    assert peak < SMALL


def test_a_consistent_model_larger_than_max_bytes_is_refused_before_building(tmp_path):
    """A file that holds what it declares is refused by the budget (parameters, gradients, buffers)."""
    numtorch.manual_seed(0)
    path = tmp_path / "wide.npz"
    io.save(numtorch.Sequential(numtorch.Linear(600, 600)), path)  # 1.44 MB of weights, 2.9 MB with gradients
    error, peak = peak_allocation(lambda p: numtorch.load(p, max_bytes=2**21), path)
    assert str(path) in str(error) and "360,600 parameters: 2,884,800 bytes" in str(error), error
    assert "max_bytes=2,097,152" in str(error)
    assert peak < 600 * 600 * 4 / 4, f"refusing allocated {peak} bytes"
    assert numtorch.load(path, max_bytes=2884800)[0].W.shape == (600, 600)


@pytest.mark.parametrize("name", ["Module", "Container", "_Pool2d", "Criterion", "Optimizer"])
def test_abstract_and_private_classes_are_never_built_from_a_file(tmp_path, name):
    error, peak = refuse_load(model_file(tmp_path), set_child(1, **{"class": name, "args": {}}))
    assert f"unknown layer '{name}'" in str(error)


def test_nesting_deeper_than_the_documented_limit_is_refused(tmp_path):
    """400 nested Sequentials (15: 4): a clear error, not a RecursionError; such a model is never saved."""
    spec = layer("ReLU")
    for _ in range(400):
        spec = {"class": "Sequential", "args": {}, "children": [spec]}
    error, _ = refuse_load(model_file(tmp_path), replace_architecture(spec))
    assert "nested more than 64 levels deep" in str(error), error
    deep = numtorch.ReLU()
    for _ in range(100):
        deep = numtorch.Sequential(deep)
    with pytest.raises(ValueError, match="nested more than 64 levels deep, which load refuses"):
        io.save(deep, tmp_path / "deep.npz")
    assert not (tmp_path / "deep.npz").exists()


def test_only_numtorch_classes_are_built_unless_custom_names_them(tmp_path):
    """A file naming a user's class whose constructor has side effects (15: 9)."""
    from user_layers import WritesMarker

    marker = tmp_path / "marker"
    path = model_file(tmp_path)
    rewrite(path, set_child(1, **{"class": "WritesMarker", "args": {"marker": str(marker)}})(header(path)))
    with pytest.raises(ValueError, match=r"unknown layer 'WritesMarker' .*custom=\[YourLayer\]") as error:
        numtorch.load(path)
    assert str(path) in str(error.value) and not marker.exists()
    assert isinstance(numtorch.load(path, custom=[WritesMarker])[1], WritesMarker) and marker.exists()
    with pytest.raises(TypeError, match="custom as a list of Module classes"):
        numtorch.load(path, custom=[int])
    impostor = type("Linear", (WritesMarker,), {})
    with pytest.raises(ValueError, match="has the name of numtorch's Linear"):
        numtorch.load(path, custom=[impostor])


def test_load_weights_builds_only_the_classes_of_the_given_model_in_its_tree(tmp_path):
    from user_layers import WritesMarker

    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    model = numtorch.Sequential(numtorch.Linear(4, 3), WritesMarker(str(ours)))
    path = tmp_path / "m.npz"
    io.save(model, path)
    io.load_weights(model, path)  # the model's own classes need no custom=

    def swap(arch):
        arch["children"].reverse()
        arch["children"][0]["args"]["marker"] = str(theirs)

    rewrite(path, edit_architecture(swap)(header(path)))
    weights = model[0].W.copy()
    with pytest.raises(ValueError, match=r"holds Sequential\(WritesMarker, Linear\), not") as error:
        io.load_weights(model, path)
    assert str(path) in str(error.value) and not theirs.exists()
    np.testing.assert_array_equal(model[0].W, weights)


def trained_checkpoint(path):
    """A checkpoint of ``small_model`` after one Adam step; returns the model and optimizer it holds."""
    net = small_model()
    optimizer = numtorch.optim.Adam(net)
    optimizer.zero_grad()
    x = np.ones((2, 4), np.float32)
    net.backward(x, net.forward(x))
    optimizer.step()
    io.save_checkpoint(path, net, optimizer, 1, history={"epoch": [1]})
    return net, optimizer


def state_of(model, optimizer):
    """Copies of everything a failed load_checkpoint must leave alone: weights, optimizer state, RNG."""
    state = optimizer.state_dict()
    return ([p.copy() for p in numtorch.module.flatten(model.getParameters())], json.dumps(
        {**state, "buffers": {k: [a.tolist() for a in v] for k, v in state["buffers"].items()}}),
        json.dumps(numtorch.get_rng_state()))


def set_buffer(name, value):
    def edit(arrays):
        arrays[f"optimizer/{name}/0"] = np.full_like(arrays[f"optimizer/{name}/0"], value) \
            if not isinstance(value, np.ndarray) else value
    return edit


CHECKPOINT_FAULTS = {
    **{f"no-{field}": (lambda m, field=field: m.pop(field), None, f"missing \\['{field}'\\]")
       for field in ("epoch", "rng", "optimizer", "optimizer_buffers", "state")},
    "step-negative": (lambda m: m["optimizer"].update(step=-1), None, "expected step >= 0, got -1"),
    "step-infinite": (lambda m: m["optimizer"].update(step=float("inf")), None, "expected step as an int"),
    "rng-huge": (lambda m: m["rng"]["state"].update(state=2**200), None, "rng is not a generator state"),
    "epoch-string": (lambda m: m.update(epoch="1"), None, "expected epoch as an int >= 0"),
    "other-optimizer": (lambda m: m["optimizer"].update({"class": "SGD"}), None, "the state is of 'SGD'"),
    "unknown-buffer": (lambda m: m["optimizer_buffers"].update(evil=2), None, "buffer 'evil' has 2 arrays"),
    "second-moment-nan": (None, set_buffer("exp_avg_sq", np.nan), r"exp_avg_sq'\[0\]: expected finite"),
    "second-moment-inf": (None, set_buffer("exp_avg_sq", np.inf), r"exp_avg_sq'\[0\]: expected finite"),
    "second-moment-negative": (None, set_buffer("exp_avg_sq", -1.0), "running average of squares"),
    "first-moment-nan": (None, set_buffer("exp_avg", np.nan), r"exp_avg'\[0\]: expected finite"),
    "float16-buffer": (None, set_buffer("exp_avg", np.zeros((3, 4), np.float16)), "is float16"),
}


@pytest.mark.parametrize("kind", sorted(CHECKPOINT_FAULTS))
def test_a_refused_checkpoint_changes_nothing(tmp_path, kind):
    """15: 3. The whole checkpoint is checked first: weights, optimizer buffers and RNG stay as they were."""
    edit_meta, edit_arrays, message = CHECKPOINT_FAULTS[kind]
    path = tmp_path / "checkpoint.npz"
    trained_checkpoint(path)
    stored = entries(path)
    meta = json.loads(str(stored[HEADER]))
    if edit_meta:
        edit_meta(meta)
    if edit_arrays:
        edit_arrays(stored)
    stored[HEADER] = np.array(json.dumps(meta))
    np.savez(path, **stored)
    numtorch.manual_seed(5)
    model = small_model()
    optimizer = numtorch.optim.Adam(model, lr=0.5)
    before = state_of(model, optimizer)
    with pytest.raises((ValueError, TypeError), match=message) as error:
        io.load_checkpoint(path, model, optimizer)
    assert str(path) in str(error.value)
    after = state_of(model, optimizer)
    assert all(np.array_equal(a, b) for a, b in zip(before[0], after[0])) and before[1:] == after[1:]


def test_fit_refuses_a_checkpoint_it_cannot_continue_before_changing_anything(tmp_path):
    """epoch=10**9 in a checkpoint skipped training and exited 0; now its history must hold as many epochs."""
    from numtorch.train import fit

    path = tmp_path / "checkpoint.npz"
    X, y = np.ones((4, 4), np.float32), np.array([0, 1, 0, 1])

    def run(model, optimizer, epochs, resume):
        return fit(model, numtorch.CrossEntropyCriterion(), optimizer, (X, y), epochs=epochs, checkpoint=path,
                   resume=resume, progress=False)

    model = small_model()
    run(model, numtorch.optim.Adam(model), 1, False)
    rewrite(path, {**header(path), "epoch": 10**9})
    model = small_model()
    optimizer = numtorch.optim.Adam(model)
    before = state_of(model, optimizer)
    with pytest.raises(ValueError, match="not a checkpoint fit can resume: expected a history of 1000000000"):
        run(model, optimizer, 2, True)
    after = state_of(model, optimizer)
    assert all(np.array_equal(a, b) for a, b in zip(before[0], after[0])) and before[1:] == after[1:]


def test_npz_memory_is_bounded_after_conversion_to_float32(tmp_path):
    """15: 6. A 100 MB uint8 X needs 500 MB once converted: counted, and refused before reading."""
    path = tmp_path / "data.npz"
    np.savez(path, y=np.zeros(10_000, np.int64))
    add_bomb(path, "X", shape=(10_000, 10_000), descr="|u1")
    error, peak = peak_allocation(lambda p: load_npz(p, max_bytes=3 * 10**8), path)
    assert str(path) in str(error) and "100,080,000 bytes, 500,080,000 with X as float32" in str(error), error
    assert peak < SMALL


def test_a_successful_npz_load_stays_within_what_it_counts(tmp_path):
    path = tmp_path / "data.npz"
    X = np.random.default_rng(0).standard_normal((500, 1000))
    np.savez(path, X=X, y=np.zeros(500, np.int64))
    needed = X.nbytes + 500 * 8 + X.size * 4 + X.size  # stored, X as float32, the finite check's mask
    with pytest.raises(ValueError, match="max_bytes"):
        load_npz(path, max_bytes=needed - 1)
    tracemalloc.start()
    try:
        load_npz(path, max_bytes=needed)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak <= needed * 1.02, (peak, needed)


def test_uint64_labels_that_do_not_fit_int64_are_refused(tmp_path):
    """15: 10. They wrapped to negative int64 labels."""
    path = tmp_path / "data.npz"
    np.savez(path, X=np.zeros((2, 3), np.float32), y=np.array([1, 2**63 + 5], np.uint64))
    with pytest.raises(ValueError, match="expected labels that fit int64, got 9223372036854775813") as error:
        load_npz(path)
    assert str(path) in str(error.value)
    np.savez(path, X=np.zeros((2, 3), np.float32), y=np.array([1, 2], np.uint64))
    assert load_npz(path)[1].dtype == np.int64


def test_mnist_memory_is_bounded_after_conversion_to_float32(tmp_path):
    """15: 6. A gzip of a few bytes declaring 1 GiB of images needed 5 GiB once converted (9.5 with a
    temporary): the header is checked against max_bytes (4 GiB) before anything is inflated."""
    files = mnist_files()
    write_mnist(tmp_path, {"labels": files["labels"]}, compress=False)
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(gzip_of(idx_header((2**16, 2**7, 2**7)), 1000))
    error, peak = peak_allocation(load_mnist, tmp_path)
    assert str(path) in str(error) and "over the limit of 858,993,459 bytes" in str(error), error
    assert peak < SMALL


def test_mnist_load_stays_within_five_bytes_a_pixel(tmp_path):
    files = mnist_files(n=2000, rows=28, cols=28)
    write_mnist(tmp_path, files, compress=False)
    tracemalloc.start()
    try:
        X, _ = load_mnist(tmp_path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak <= 5 * X.size + 9 * 2000 + 2**16, peak


def test_an_archive_of_too_many_entries_is_refused_before_parsing_them(tmp_path, monkeypatch):
    """15: 10. 100,000 entries took 31 s (each header parsed) and a 1.3 MB message."""
    path = model_file(tmp_path)
    with zipfile.ZipFile(path, "a") as archive:
        for i in range(3000):
            archive.writestr(f"model/extra{i}.npy", b"")
    with pytest.raises(ValueError, match=r"unexpected \['model/extra0', .* and 2,995 more\]") as error:
        numtorch.load(path)
    assert str(path) in str(error.value) and len(str(error.value)) < 600
    monkeypatch.setattr(io.archive, "MAX_ENTRIES", 1000)
    error, peak = peak_allocation(numtorch.load, path)
    assert f"{path}: 3,005 entries, more than the 1,000 numtorch reads" in str(error)
    assert peak < 2**18, f"counting the entries allocated {peak} bytes (zipfile's directory: 1.7 MB)"


def test_a_fifo_given_as_a_file_is_refused_without_waiting(tmp_path):
    """15: 10. Opening a FIFO for reading waits for a writer forever."""
    import threading

    fifo = tmp_path / "model.npz"
    os.mkfifo(fifo)
    outcomes = {}

    def attempt(name, call):
        try:
            call(fifo)
        except ValueError as error:
            outcomes[name] = str(error)

    for name, call in (("load", numtorch.load), ("load_npz", load_npz),
                       ("read_idx", numtorch.data.read_idx)):
        thread = threading.Thread(target=attempt, args=(name, call), daemon=True)
        thread.start()
        thread.join(timeout=20)
        assert not thread.is_alive(), f"{name} is waiting on the FIFO"
        assert outcomes[name] == f"{fifo}: not a regular file (a FIFO (named pipe))"


@pytest.mark.parametrize("shape", [(1,) * 200, (2**32 - 1, 2**32 - 1, 0)], ids=["rank-200", "huge-and-zero"])
def test_idx_errors_name_the_file(tmp_path, shape):
    """15: 10. NumPy's errors (64 dimensions at most; a shape it cannot make) came without the file."""
    path = tmp_path / "data.idx"
    path.write_bytes(idx_header(shape) + bytes(1 if 0 not in shape else 0))
    with pytest.raises(ValueError) as error:
        numtorch.data.read_idx(path)
    assert str(error.value).startswith(f"{path}: IDX header says ")
