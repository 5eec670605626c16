"""Tables: what flows between modules when a network branches.

As in Torch7, where a module may take or return a Lua table of tensors, a
numtorch *table* is a Python ``list`` of arrays; entries may be tables again
(nested lists). Everything here works entry by entry on any nesting.
"""

import numpy as np


def is_table(data):
    return isinstance(data, list)


def shape_of(data):
    """An array's shape, or for a table the list of its entries' shapes (nested as the table).

    Anything else shows as its type's name (this also describes bad input in messages).
    """
    if isinstance(data, list):
        return [shape_of(entry) for entry in data]
    return getattr(data, "shape", type(data).__name__)


def leaves(data):
    """The arrays of a table in order, depth first (``[data]`` for an array)."""
    if isinstance(data, list):
        return [array for entry in data for array in leaves(entry)]
    return [data]


def map_table(function, data, *others):
    """``function`` applied to every array of ``data`` (and the arrays at the same place in
    ``others``, tables of the same structure); the result has ``data``'s structure."""
    if isinstance(data, list):
        return [map_table(function, entry, *(other[i] for other in others)) for i, entry in enumerate(data)]
    return function(data, *others)


def sample_shapes(shapes, who):
    """``shapes`` checked as the shape of one sample (without the batch): a tuple of positive ints for
    an array, a list of such shapes for a table (nested as the table). Returns tuples and lists."""
    if isinstance(shapes, (tuple, list)) and shapes and all(isinstance(s, (tuple, list)) for s in shapes):
        return [sample_shapes(entry, who) for entry in shapes]
    sizes = isinstance(shapes, (tuple, list)) and all(
        isinstance(d, (int, np.integer)) and not isinstance(d, (bool, np.bool_)) and d >= 1 for d in shapes)
    if not sizes:
        raise TypeError(f"{who}: expected input_shape as the shape of one sample, a tuple of positive ints "
                        f"such as (1, 28, 28) (a list of them for a table input), got {shapes!r}")
    return tuple(int(d) for d in shapes)


def zero_batch(shapes, dtype=np.float32):
    """A batch of one zero sample for ``sample_shapes``' result: an array, or a table of them."""
    if isinstance(shapes, list):
        return [zero_batch(entry, dtype) for entry in shapes]
    return np.zeros((1, *shapes), dtype)
