"""The output folder of a run: created, checked in words, locked (stale locks taken over)."""

import errno
import os
import re
import subprocess
import sys

import pytest

from numtorch import run_folder
from numtorch.run_folder import LOCK_NAME, FolderInUse, claim

SRC = os.path.join(os.path.dirname(__file__), "..", "src")


def test_claim_creates_locks_and_releases(tmp_path):
    out = tmp_path / "a" / "b"
    with claim(out, ["model.npz"]) as folder:
        assert out.is_dir() and folder.stale_pid is None
        assert (out / LOCK_NAME).read_text() == f"{os.getpid()}\n"
        with pytest.raises(FolderInUse) as caught:
            claim(out)
        pattern = (rf"--out {re.escape(str(out))} is in use by another run \(PID {os.getpid()}, since "
                   r"\d\d:\d\d:\d\d\): wait for it to end, or choose another --out")
        assert re.fullmatch(pattern, str(caught.value)), str(caught.value)
    assert not (out / LOCK_NAME).exists()
    claim(out).release()


def test_a_dead_holders_lock_is_taken_over(tmp_path):
    holder = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                            text=True, check=True)
    dead = int(holder.stdout)
    (tmp_path / LOCK_NAME).write_text(f"{dead}\n")
    with claim(tmp_path) as folder:
        assert folder.stale_pid == dead
        assert (tmp_path / LOCK_NAME).read_text() == f"{os.getpid()}\n"


@pytest.mark.parametrize("make,message", [
    (lambda tmp: (tmp / "f").write_text("x") and tmp / "f", "this is a file, not a folder: give a folder"),
    (lambda tmp: (tmp / "f").write_text("x") and tmp / "f" / "sub",
     "cannot create this folder: a part of the path is a file, not a folder; choose another --out"),
    (lambda tmp: (tmp / "model.npz").mkdir() or tmp,
     "model.npz is a folder, where the run writes a file: remove it or choose another --out"),
])
def test_unusable_folders_are_refused_in_words(tmp_path, make, message):
    with pytest.raises(ValueError) as caught:
        claim(make(tmp_path), ["model.npz"])
    assert message in str(caught.value) and "Errno" not in str(caught.value)


@pytest.mark.parametrize("code,words", [(errno.EACCES, "no permission to write there"),
                                        (errno.EROFS, "it is on a read-only file system")])
def test_a_folder_that_cannot_be_written(tmp_path, monkeypatch, code, words):
    def refuse(path, *args):
        raise OSError(code, os.strerror(code), path)

    monkeypatch.setattr(run_folder.os, "open", refuse)
    with pytest.raises(ValueError) as caught:
        claim(tmp_path)
    expected = f"--out {tmp_path}: cannot write in this folder: {words}; choose another --out"
    assert str(caught.value) == expected


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes in read-only folders")
def test_a_read_only_folder(tmp_path):
    tmp_path.chmod(0o500)
    try:
        with pytest.raises(ValueError, match="cannot write in this folder: no permission to write there"):
            claim(tmp_path)
    finally:
        tmp_path.chmod(0o700)
