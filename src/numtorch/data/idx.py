"""The IDX file format of MNIST and Fashion-MNIST, read with NumPy alone.

An IDX file is a 4-byte magic number ``0x00 0x00 <type> <ndim>``, then
``ndim`` big-endian 32-bit sizes, then the values, big-endian, row-major.
Files may be gzip-compressed (recognized by their first bytes, not by name).

The header is read and checked first; then exactly the number of bytes its
sizes declare, at most ``MAX_IDX_BYTES``, so a small gzip file that inflates
to gigabytes is refused without inflating it.
"""

import gzip
import os
import zlib

import numpy as np

IDX_TYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
GZIP_MAGIC = b"\x1f\x8b"
MAX_IDX_BYTES = 2**30  # 1 GiB of values; the MNIST training images are 47 MB


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


def read_idx(path):
    """Read one IDX file (raw or gzip) into an array of its native type and shape.

    Raises ValueError when the magic number, the type code or the size of the
    data disagree with the header, or the header declares more than
    ``MAX_IDX_BYTES`` of values.
    """
    with open(path, "rb") as file:
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
        sizes = reader.read(4 * ndim)
        header = 4 + 4 * ndim
        if len(sizes) < 4 * ndim:
            raise ValueError(f"{path}: truncated IDX header (rank {ndim} needs {header} bytes, "
                             f"got {reader.total})")
        shape = tuple(int(d) for d in np.frombuffer(sizes, dtype=">u4"))
        dtype = IDX_TYPES[type_code]
        values = int(np.prod(shape, dtype=object)) * dtype.itemsize
        says = f"{path}: IDX header says shape {shape} of {dtype.name} ({header + values} bytes in all)"
        if values > MAX_IDX_BYTES:
            raise ValueError(f"{says}, more than the {MAX_IDX_BYTES}-byte limit of numtorch's IDX reader")
        if not reader.compressed and size != header + values:
            raise ValueError(f"{says}, but the file holds {size} bytes")
        data = reader.read(values)
        if len(data) < values:
            raise ValueError(f"{says}, but the file holds {reader.total} bytes")
        if reader.read(1):
            raise ValueError(f"{says}, but the file holds more than {header + values} bytes")
    return np.frombuffer(data, dtype=dtype).reshape(shape).astype(dtype.newbyteorder("="))
