"""Reading ``.npz`` archives defensively and writing files atomically.

``Npz`` opens an archive and reads only the ``.npy`` headers of its entries,
so a caller checks every declared shape and dtype before a byte of array data
is read: a few kilobytes of deflated zeros can declare gigabytes. Every error
a broken zip or ``.npy`` raises becomes a ``ValueError`` naming the file.
``numtorch.io`` reads models and checkpoints through it, ``numtorch.data``
a user's dataset.

``atomic_write`` (and ``atomic_savez`` on it) writes to a temporary file in
the target's folder, fsyncs it and renames it over the target, so the target
is always the old file or the complete new one, and a symlink planted at the
target is replaced, never written through. Every file numtorch writes goes
through it: models, checkpoints, ``history.json`` and the plots.

``strict_json`` is the JSON text numtorch writes: strict JSON, with NaN and
infinities as ``null`` (``json.dumps`` writes bare ``NaN``/``Infinity``
tokens that strict parsers reject).
"""

import json
import math
import os
import secrets
import stat
import zipfile

import numpy as np

MAX_ENTRIES = 2**16  # arrays in one .npz: a model with Adam state keeps 3 per parameter array


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


def open_regular(path):
    """``path`` opened to read bytes; anything but a regular file is a ``ValueError`` naming it.

    Opened without blocking, then checked: a FIFO or a device given as a
    file would otherwise make the reader wait forever for a writer.
    """
    try:
        descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such file") from None
    mode = os.fstat(descriptor).st_mode
    if not stat.S_ISREG(mode):
        os.close(descriptor)
        kind = ("a directory" if stat.S_ISDIR(mode) else "a FIFO (named pipe)" if stat.S_ISFIFO(mode)
                else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "a socket")
        raise ValueError(f"{path}: not a regular file ({kind})")
    if hasattr(os, "set_blocking"):
        os.set_blocking(descriptor, True)
    return os.fdopen(descriptor, "rb")


def abridged(items, limit=5):
    """At most ``limit`` of ``items`` for a message, and how many more: a hostile file cannot make it huge."""
    items = sorted(items)
    shown = ", ".join(repr(item)[:100] for item in items[:limit])
    return f"[{shown}]" if len(items) <= limit else f"[{shown}, ... and {len(items) - limit:,} more]"


def declared_entries(file):
    """The number of entries a zip's end-of-central-directory record declares (zip64's too), or None.

    Read from the last bytes of the file, so a zip of a million entries is
    refused without parsing its directory (zipfile takes seconds and tens of
    MiB for 100,000).
    """
    file.seek(0, os.SEEK_END)
    size = file.tell()
    file.seek(max(size - 2**16 - 22, 0))
    tail = file.read()
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or at + 22 > len(tail):
        return None
    total = int.from_bytes(tail[at + 10:at + 12], "little")
    if total == 0xFFFF and at >= 20 and tail[at - 20:at - 16] == b"PK\x06\x07":
        file.seek(int.from_bytes(tail[at - 12:at - 4], "little"))
        record = file.read(40)
        if record[:4] == b"PK\x06\x06" and len(record) == 40:
            total = int.from_bytes(record[32:40], "little")
    return total


class Npz:
    """An open ``.npz``: the names of its arrays, and each one's :class:`Entry` read from its header alone.

    Opening reads the zip's directory only: the number of entries (at most
    ``max_entries``, by default ``MAX_ENTRIES``) and their names (each an ``.npy``, none twice) are
    checked before any ``.npy`` header is parsed. ``entry(name)`` parses one
    header; no array data is read until ``read(name)``. So a caller checks
    names first, then declared shapes and dtypes, and refuses a hostile file
    before it allocates anything.
    """

    def __init__(self, path, max_entries=None):
        self.path = os.fspath(path)
        max_entries = MAX_ENTRIES if max_entries is None else max_entries
        self.file = open_regular(self.path)
        try:
            with corrupt(self.path):
                start = self.file.read(6)
                self.file.seek(0)
                if start == b"\x93NUMPY":
                    raise ValueError("a single .npy array, not an .npz archive")
                if not start.startswith(b"PK"):
                    raise ValueError(f"expected a zip archive (starting with b'PK'), got {start!r}")
                declared = declared_entries(self.file)
                self.file.seek(0)
                if declared is None or declared <= max_entries:
                    self.zip = zipfile.ZipFile(self.file)
                    infos = self.zip.infolist()
            if declared is not None and declared > max_entries:
                raise ValueError(f"{self.path}: {declared:,} entries, more than the {max_entries:,} "
                                 "numtorch reads (numtorch.io.archive.MAX_ENTRIES)")
            if len(infos) > max_entries:
                raise ValueError(f"{self.path}: {len(infos):,} entries, more than the {max_entries:,} "
                                 "numtorch reads (numtorch.io.archive.MAX_ENTRIES)")
            self.infos = {}
            for info in infos:
                if not info.filename.endswith(".npy"):
                    raise ValueError(f"{self.path}: entry {info.filename[:100]!r} is not an .npy array")
                name = info.filename[:-4]
                if name in self.infos:
                    raise ValueError(f"{self.path}: entry {name[:100]!r} appears twice")
                self.infos[name] = info
        except BaseException:
            self.file.close()
            raise
        self.names = list(self.infos)
        self.entries = {}

    def __enter__(self):
        return self

    def __exit__(self, *exception):
        self.zip.close()
        self.file.close()

    def entry(self, name):
        """The :class:`Entry` of array ``name``, its ``.npy`` header parsed (once)."""
        if name not in self.entries:
            with corrupt(self.path):
                self.entries[name] = entry_header(self.zip, self.infos[name])
        return self.entries[name]

    def read(self, name):
        """The array ``name`` (``allow_pickle=False``), allocating only what its header declared."""
        entry = self.entry(name)
        with corrupt(self.path), self.zip.open(entry.info) as stream:
            return np.lib.format.read_array(stream, allow_pickle=False)


def atomic_write(path, write):
    """Write a file through ``write(file)`` (a binary file object) so that ``path`` is never half-written.

    ``write`` fills a new temporary file in ``path``'s folder, which is
    fsynced and renamed over ``path``, and the folder is fsynced: ``path`` is
    the old file or the complete new one, after a crash, a full disk or a
    power cut. The rename replaces a symlink planted at ``path`` rather than
    writing through it to the file it points to. On failure the temporary
    file is removed and an ``OSError`` names ``path``.
    """
    path = os.fspath(path)
    directory, name = os.path.split(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"{path}: no such directory {directory}")
    temporary = os.path.join(directory, f".{name}.{secrets.token_hex(6)}.tmp")
    try:
        # O_EXCL: a fresh file of our own, never a link someone planted at the temporary name.
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        try:
            with os.fdopen(descriptor, "wb") as file:
                write(file)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, path)
        except BaseException:
            os.unlink(temporary)
            raise
        sync_directory(directory)
    except OSError as error:
        if path in str(error):
            raise
        message = f"cannot write {path}: {error.strerror or error}"
        raise (OSError(message) if error.errno is None else OSError(error.errno, message)) from None


def atomic_savez(path, arrays):
    """``np.savez`` of ``arrays`` to ``path``, atomically (see ``atomic_write``)."""
    atomic_write(path, lambda file: np.savez(file, **arrays))


def sync_directory(directory):
    """fsync a folder, making a rename in it durable (POSIX; elsewhere there is nothing to do)."""
    if not hasattr(os, "O_DIRECTORY"):
        return
    descriptor = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def strict_json(value, **options):
    """``json.dumps(value, **options)`` that every JSON parser accepts: NaN and infinities become ``null``."""
    return json.dumps(finite_or_null(value), allow_nan=False, **options)


def finite_or_null(value):
    """``value`` with every non-finite float (NumPy's too), at any depth of dicts and lists, as ``None``."""
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: finite_or_null(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_or_null(item) for item in value]
    return value
