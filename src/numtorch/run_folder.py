"""The output folder of a training run: checked before any work, locked for the run's life.

``numtorch train --out DIR`` calls ``claim(DIR, outputs)`` before it loads
data, so an unusable folder costs no training: the folder is created if
absent, refused with one sentence in words (not errno text) if it is a file,
cannot be created or written, or holds a folder where the run writes a file.

``claim`` also takes an exclusive lock on the folder until ``release`` (or the
end of a ``with`` block): a second run in the same folder, or a ``--resume``
beside a running run, is refused with the holder's PID. The lock is an
``flock`` on ``DIR/.numtorch.lock``, which the operating system drops when its
holder dies, however it dies; the file keeps the holder's PID for messages. A
lock file left by a run that was killed is stale: the next run takes it over
and says so. (POSIX; where ``fcntl`` is missing, as on Windows, the folder is
checked but not locked.)
"""

import errno
import os
import time
from contextlib import suppress

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None

LOCK_NAME = ".numtorch.lock"

REASONS = {
    errno.EACCES: "no permission to write there",
    errno.EPERM: "no permission to write there",
    errno.EROFS: "it is on a read-only file system",
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is used up",
    errno.ENAMETOOLONG: "a name in it is too long",
    errno.ENOTDIR: "a part of the path is a file, not a folder",
    errno.ELOOP: "it goes through too many symbolic links",
}


def reason(error):
    """What went wrong, in words, for an ``OSError``."""
    words = REASONS.get(error.errno)
    if words is None:
        words = (error.strerror or str(error)).lower()
    return words


class FolderInUse(ValueError):
    """Another live process holds the output folder's lock."""


class RunFolder:
    """A checked, locked output folder (see the module's docstring). ``path``: the folder;
    ``stale_pid``: the PID of a dead run whose lock file was taken over (else ``None``)."""

    def __init__(self, path, descriptor, stale_pid):
        self.path, self.descriptor, self.stale_pid = path, descriptor, stale_pid

    def release(self):
        """Remove the lock file and drop the lock (removed while still held, so no other run sees a
        file this run would delete)."""
        if self.descriptor is None:
            return
        with suppress(OSError):  # already gone: nothing to remove
            os.unlink(os.path.join(self.path, LOCK_NAME))
        os.close(self.descriptor)
        self.descriptor = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()


def claim(path, outputs=(), who="--out"):
    """Create (if needed), check and lock the output folder ``path``; return a :class:`RunFolder`.

    ``outputs``: the names the run will write in it; an existing folder of one of those names is
    refused. Raises ``ValueError`` (``FolderInUse`` for a folder another run holds) saying, in
    words, what is wrong and what to do; ``who`` names the option in messages.
    """
    path = os.fspath(path)
    if os.path.exists(path) and not os.path.isdir(path):
        raise ValueError(f"{who} {path}: this is a file, not a folder: give a folder (it is created "
                         "if absent)")
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as error:
        raise ValueError(f"{who} {path}: cannot create this folder: {reason(error)}; choose another "
                         f"{who}") from None
    for name in outputs:
        if os.path.isdir(os.path.join(path, name)):
            raise ValueError(f"{who} {path}: {os.path.join(path, name)} is a folder, where the run writes "
                             f"a file: remove it or choose another {who}")
    lock_path = os.path.join(path, LOCK_NAME)
    while True:
        try:
            descriptor = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as error:
            raise ValueError(f"{who} {path}: cannot write in this folder: {reason(error)}; choose another "
                             f"{who}") from None
        try:
            lock(descriptor, path, who)
        except BaseException:
            os.close(descriptor)
            raise
        if same_file(descriptor, lock_path):
            break
        # The holder removed the file between our open and our lock, releasing the folder; the
        # lock we got is on a file nobody else will open: start again on the path's file.
        os.close(descriptor)
    stale_pid = read_pid(descriptor)
    os.ftruncate(descriptor, 0)
    os.lseek(descriptor, 0, os.SEEK_SET)
    os.write(descriptor, f"{os.getpid()}\n".encode())
    return RunFolder(path, descriptor, stale_pid)


def lock(descriptor, path, who):
    """Take the exclusive lock on the open lock file, or raise ``FolderInUse`` naming the holder."""
    if fcntl is None:
        return
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = read_pid(descriptor)
        since = time.strftime("%H:%M:%S", time.localtime(os.fstat(descriptor).st_mtime))
        raise FolderInUse(f"{who} {path} is in use by another run (PID {holder or 'unknown'}, since "
                          f"{since}): wait for it to end, or choose another {who}") from None


def same_file(descriptor, path):
    try:
        here, there = os.fstat(descriptor), os.stat(path)
    except FileNotFoundError:
        return False
    return (here.st_dev, here.st_ino) == (there.st_dev, there.st_ino)


def read_pid(descriptor):
    """The PID written in the lock file, or ``None`` (empty or not a number)."""
    os.lseek(descriptor, 0, os.SEEK_SET)
    text = os.read(descriptor, 32).decode("ascii", "replace").strip()
    return int(text) if text.isdigit() else None
