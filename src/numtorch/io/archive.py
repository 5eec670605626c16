"""Reading ``.npz`` archives defensively and writing files atomically.

``Npz`` opens an archive and reads only the ``.npy`` headers of its entries,
so a caller checks every declared shape and dtype before a byte of array data
is read: a few kilobytes of deflated zeros can declare gigabytes. Every error
a broken zip or ``.npy`` raises becomes a ``ValueError`` naming the file.
``numtorch.io`` reads models and checkpoints through it, ``numtorch.data``
a user's dataset.

``atomic_savez`` writes to a temporary file in the target's folder, fsyncs it
and renames it over the target, so the target is always the old file or the
complete new one.
"""

import math
import os
import secrets
import zipfile

import numpy as np


class Entry:
    """One ``.npy`` member of an ``.npz``: its zip record and the shape and dtype its header declares."""

    def __init__(self, info, shape, dtype):
        self.info, self.shape, self.dtype = info, shape, dtype

    @property
    def nbytes(self):
        return math.prod(self.shape) * self.dtype.itemsize


def entry_header(archive, info):
    """The :class:`Entry` of member ``info``, reading only its ``.npy`` header.

    Refuses an entry that is not a plain ``.npy``, holds Python objects or
    declares more (or less) data than the zip says it holds.
    """
    with archive.open(info) as stream:
        version = np.lib.format.read_magic(stream)
        if version not in ((1, 0), (2, 0)):
            raise ValueError(f"entry {info.filename!r}: .npy format version {version}")
        read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                       else np.lib.format.read_array_header_2_0)
        shape, _, dtype = read_header(stream)
        held = info.file_size - stream.tell()
    if dtype.hasobject:
        raise ValueError(f"entry {info.filename!r} holds Python objects (a pickle), "
                         "which numtorch never loads")
    entry = Entry(info, shape, dtype)
    if entry.nbytes != held:
        raise ValueError(f"entry {info.filename!r} declares shape {shape} of {dtype} "
                         f"({entry.nbytes} bytes) but holds {held} bytes")
    return entry


class corrupt:
    """Context: turn what a broken zip or ``.npy`` raises into ``ValueError`` naming ``path``."""

    # zipfile raises NotImplementedError for an unknown compression method and
    # RuntimeError for an entry flagged as encrypted.
    ERRORS = (OSError, EOFError, ValueError, zipfile.BadZipFile, NotImplementedError, RuntimeError)

    def __init__(self, path):
        self.path = path

    def __enter__(self):
        return self

    def __exit__(self, kind, error, traceback):
        if kind is FileNotFoundError:
            raise FileNotFoundError(f"{self.path}: no such file") from None
        if kind is not None and issubclass(kind, self.ERRORS):
            raise ValueError(f"{self.path}: not a readable .npz file, "
                             f"truncated or corrupt ({error})") from None
        return False


class Npz:
    """An open ``.npz``: ``entries`` maps each array's name to its :class:`Entry`, read from headers only.

    No array data is read until ``read(name)``, so a caller checks the
    declared shapes and dtypes first and refuses a hostile file before it
    allocates anything.
    """

    def __init__(self, path):
        self.path = os.fspath(path)
        with corrupt(self.path):
            with open(self.path, "rb") as file:
                start = file.read(6)
            if start == b"\x93NUMPY":
                raise ValueError("a single .npy array, not an .npz archive")
            if not start.startswith(b"PK"):
                raise ValueError(f"expected a zip archive (starting with b'PK'), got {start!r}")
            self.zip = zipfile.ZipFile(self.path)
            try:
                self.entries = {}
                for info in self.zip.infolist():
                    name = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
                    if name in self.entries:
                        raise ValueError(f"entry {name!r} appears twice")
                    self.entries[name] = entry_header(self.zip, info)
            except BaseException:
                self.zip.close()
                raise

    def __enter__(self):
        return self

    def __exit__(self, *exception):
        self.zip.close()

    def read(self, name):
        """The array ``name`` (``allow_pickle=False``), allocating only what its header declared."""
        with corrupt(self.path), self.zip.open(self.entries[name].info) as stream:
            return np.lib.format.read_array(stream, allow_pickle=False)


def atomic_savez(path, arrays):
    """``np.savez`` to a temporary file next to ``path``, then rename it over ``path``.

    A crash or error mid-write leaves any previous file at ``path`` intact; the
    file and then its folder are fsynced, so the new file also survives a power cut.
    """
    path = os.fspath(path)
    directory, name = os.path.split(os.path.abspath(path))
    temporary = os.path.join(directory, f".{name}.{secrets.token_hex(6)}.tmp")
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"{path}: no such directory {directory}")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(descriptor, "wb") as file:
            np.savez(file, **arrays)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise
    sync_directory(directory)


def sync_directory(directory):
    """fsync a folder, making a rename in it durable (POSIX; elsewhere there is nothing to do)."""
    if not hasattr(os, "O_DIRECTORY"):
        return
    descriptor = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
