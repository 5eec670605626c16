"""The IDX file format of MNIST and Fashion-MNIST, read with NumPy alone.

An IDX file is a 4-byte magic number ``0x00 0x00 <type> <ndim>``, then
``ndim`` big-endian 32-bit sizes, then the values, big-endian, row-major.
Files may be gzip-compressed (recognized by their first bytes, not by name).

The header is read and checked first; then exactly the number of bytes its
sizes declare, at most ``MAX_IDX_BYTES``, so a small gzip file that inflates
to gigabytes is refused without inflating it.
"""

import gzip
import math
import os
import zlib

import numpy as np

from numtorch.io.archive import open_regular

IDX_TYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
GZIP_MAGIC = b"\x1f\x8b"
MAX_IDX_BYTES = 2**30  # read_idx's default limit: 1 GiB of values; the MNIST training images are 47 MB
MAX_IDX_RANK = 32  # NumPy 1.x arrays have at most 32 dimensions (MNIST's files have 1 and 3)


class Reader:
    """The bytes of an IDX file, inflated when it is gzip; a broken gzip stream is a ``ValueError``."""

    def __init__(self, path, file):
        self.path, self.total = path, 0
        self.compressed = file.read(2) == GZIP_MAGIC
        file.seek(0)
        self.stream = gzip.GzipFile(fileobj=file, mode="rb") if self.compressed else file

    def read(self, size):
        """Up to ``size`` more bytes (fewer only at the end of the data)."""
        try:
            data = self.stream.read(size)
        except (OSError, EOFError, zlib.error) as error:
            raise ValueError(f"{self.path}: corrupt gzip data ({error})") from None
        self.total += len(data)
        return data

    def read_into(self, array):
        """Fill ``array``'s memory from the stream; the number of bytes read (fewer only at the end)."""
        memory, done = memoryview(array.reshape(-1)).cast("B"), 0
        while done < len(memory):
            try:
                count = self.stream.readinto(memory[done:])
            except (OSError, EOFError, zlib.error) as error:
                raise ValueError(f"{self.path}: corrupt gzip data ({error})") from None
            if not count:
                break
            done += count
        self.total += done
        return done


def read_idx(path, max_bytes=MAX_IDX_BYTES):
    """Read one IDX file (raw or gzip) into an array of its native type and shape.

    Raises ValueError naming the file when it is not a regular file, when the
    magic number, the type code, the rank (at most ``MAX_IDX_RANK``) or the
    size of the data disagree with the header, or when the header declares
    more than ``max_bytes`` of values (checked before any is read). The values
    are read straight into the returned array: the file's size in memory, once.
    """
    with open_regular(path) as file:
        size = os.fstat(file.fileno()).st_size
        reader = Reader(path, file)
        magic = reader.read(4)
        if len(magic) < 4:
            raise ValueError(f"{path}: not an IDX file (only {len(magic)} bytes)")
        zero1, zero2, type_code, ndim = magic
        if zero1 != 0 or zero2 != 0 or type_code not in IDX_TYPES or ndim == 0:
            raise ValueError(
                f"{path}: not an IDX file (magic number 0x{magic.hex()}, expected 0x0000 followed "
                f"by a type code in {{{', '.join(f'0x{c:02x}' for c in IDX_TYPES)}}} and a rank >= 1)"
            )
        if ndim > MAX_IDX_RANK:
            raise ValueError(f"{path}: IDX header says rank {ndim}, more than the {MAX_IDX_RANK} dimensions "
                             "an array can have here")
        sizes = reader.read(4 * ndim)
        header = 4 + 4 * ndim
        if len(sizes) < 4 * ndim:
            raise ValueError(f"{path}: truncated IDX header (rank {ndim} needs {header} bytes, "
                             f"got {reader.total})")
        shape = tuple(int(d) for d in np.frombuffer(sizes, dtype=">u4"))
        dtype = IDX_TYPES[type_code]
        values = math.prod(shape) * dtype.itemsize
        says = f"{path}: IDX header says shape {shape} of {dtype.name} ({header + values} bytes in all)"
        if max_bytes is not None and values > max_bytes:
            raise ValueError(f"{says}, over the limit of {max_bytes:,} bytes")
        if not reader.compressed and size != header + values:
            raise ValueError(f"{says}, but the file holds {size} bytes")
        try:
            array = np.empty(shape, dtype)
        except (ValueError, MemoryError) as error:
            raise ValueError(f"{says}, which cannot be allocated ({error})") from None
        if reader.read_into(array) < values:
            raise ValueError(f"{says}, but the file holds {reader.total} bytes")
        if reader.read(1):
            raise ValueError(f"{says}, but the file holds more than {header + values} bytes")
    return array.astype(dtype.newbyteorder("="), copy=False)
