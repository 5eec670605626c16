"""Tables: what flows between modules when a network branches.

As in Torch7, where a module may take or return a Lua table of tensors, a
numtorch *table* is a Python ``list`` of arrays; entries may be tables again
(nested lists). Everything here works entry by entry on any nesting.
"""


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
