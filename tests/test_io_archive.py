"""numtorch.io.archive: truncated and corrupt archives, atomic writes."""

import errno
import json
import os

import numpy as np
import pytest

import numtorch as nt
from numtorch import io
from numtorch.io.archive import atomic_write, strict_json


def model(seed=0):
    nt.manual_seed(seed)
    return nt.Sequential(nt.Linear(6, 5), nt.LeakyReLU(0.2), nt.Sequential(nt.Linear(5, 3), nt.Tanh()))


@pytest.mark.parametrize("cut", [0.1, 0.5, 0.99])
def test_truncated_and_corrupt_files(tmp_path, cut):
    path = tmp_path / "m.npz"
    io.save(model(), path)
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * cut)])
    with pytest.raises(ValueError, match="truncated or corrupt"):
        io.load(path)


def test_garbage_and_missing_files(tmp_path):
    np.savez(tmp_path / "plain.npz", W=np.zeros(2))
    with pytest.raises(ValueError, match="no __numtorch__ entry"):
        io.load(tmp_path / "plain.npz")
    (tmp_path / "junk.npz").write_bytes(b"hello")
    with pytest.raises(ValueError, match="truncated or corrupt"):
        io.load(tmp_path / "junk.npz")
    np.save(tmp_path / "one.npy", np.zeros(2))
    with pytest.raises(ValueError, match="single .npy array"):
        io.load(tmp_path / "one.npy")
    with pytest.raises(FileNotFoundError, match="no such file"):
        io.load(tmp_path / "absent.npz")


def test_writes_are_atomic(tmp_path, monkeypatch):
    path = tmp_path / "m.npz"
    io.save(model(seed=1), path)
    before = path.read_bytes()

    def failing_savez(file, **arrays):
        file.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", failing_savez)
    with pytest.raises(OSError, match="disk full"):
        io.save(model(seed=2), path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["m.npz"]


def test_atomic_write_replaces_a_planted_symlink_instead_of_writing_through_it(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (tmp_path / "out.json").symlink_to(victim)
    atomic_write(tmp_path / "out.json", lambda file: file.write(b"{}"))
    assert victim.read_text() == "precious"
    assert not (tmp_path / "out.json").is_symlink() and (tmp_path / "out.json").read_text() == "{}"


def test_a_failed_atomic_write_leaves_the_old_file_whole_and_names_the_path(tmp_path):
    path = tmp_path / "history.json"
    path.write_text("old")

    def full_disk(file):
        file.write(b"half")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with pytest.raises(OSError, match=f"cannot write {path}: No space left on device") as error:
        atomic_write(path, full_disk)
    assert error.value.errno == errno.ENOSPC
    assert path.read_text() == "old" and os.listdir(tmp_path) == ["history.json"]

    with pytest.raises(ZeroDivisionError):
        atomic_write(path, lambda file: 1 / 0)
    assert path.read_text() == "old" and os.listdir(tmp_path) == ["history.json"]


def test_strict_json_writes_non_finite_numbers_as_null():
    value = {"loss": float("nan"), "rows": [1.5, np.float32(np.inf), (-np.inf, 2)], "n": 3, "name": "x"}

    def refuse(token):
        raise ValueError(f"not strict JSON: {token}")

    assert json.loads(strict_json(value), parse_constant=refuse) == \
        {"loss": None, "rows": [1.5, None, [None, 2]], "n": 3, "name": "x"}
    assert strict_json({"a": 1}, indent=1) == '{\n "a": 1\n}'
