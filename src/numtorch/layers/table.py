"""Table modules: no parameters; they merge, split and pick the entries of tables.

A table is a Python list of arrays (see ``numtorch._table``). With
``ConcatTable`` and ``ParallelTable`` (containers) these make every branching
network: a residual block is ``Sequential(ConcatTable(body, Identity()),
CAddTable(), ReLU())``.
"""

import numpy as np

from numtorch._checks import check_int, describe, label
from numtorch._table import map_table, shape_of
from numtorch.module import Module


def check_arrays(owner, table, what="input"):
    """Every entry of ``table`` is an array (no nested table) and all share one dtype."""
    for i, entry in enumerate(table):
        if not isinstance(entry, np.ndarray):
            raise TypeError(f"{label(owner)}: expected every {what} entry as an array, got {describe(entry)} "
                            f"at [{i}] (shapes {shape_of(table)})")
    dtypes = [entry.dtype for entry in table]
    if len(set(dtypes)) > 1:
        raise TypeError(f"{label(owner)}: expected {what} entries of one dtype, got "
                        + ", ".join(str(dtype) for dtype in dtypes))


def check_same_shapes(owner, table):
    """Entries of one shape (element-wise table modules)."""
    check_arrays(owner, table)
    if any(entry.shape != table[0].shape for entry in table):
        raise ValueError(f"{label(owner)}: expected input entries of one shape, got {shape_of(table)}")


def join(owner, arrays, dim, what="input"):
    """``np.concatenate(arrays, axis=dim)`` after checking that the arrays agree off that axis."""
    check_arrays(owner, arrays, what)
    ndim = arrays[0].ndim
    if any(array.ndim != ndim for array in arrays) or not -ndim <= dim < ndim:
        raise ValueError(f"{label(owner)}: expected {what} with one number of dimensions, more than "
                         f"{dim if dim >= 0 else -dim - 1}, got shapes {shape_of(arrays)}")
    axis = dim % ndim
    off_axis = [array.shape[:axis] + array.shape[axis + 1:] for array in arrays]
    if any(shape != off_axis[0] for shape in off_axis):
        raise ValueError(f"{label(owner)}: expected {what} that agree on every axis but {dim}, "
                         f"got shapes {shape_of(arrays)}")
    return np.concatenate(arrays, axis=axis)


def split(array, sizes, dim):
    """``array`` cut along ``dim`` into parts of ``sizes`` (views, in order)."""
    return np.split(array, np.cumsum(sizes)[:-1], axis=dim)


class CAddTable(Module):
    """Element-wise sum of the entries: ``y = x[0] + x[1] + ...``.

    Backward: every entry gets ``g`` (each its own copy, never one shared array).
    Shape: a table of arrays of one shape -> an array of that shape.
    """

    input_kind = "table"

    def updateOutput(self, input):
        check_same_shapes(self, input)
        output = input[0] + input[1] if len(input) > 1 else input[0].copy()
        for entry in input[2:]:
            output += entry
        self.output = output
        return self.output

    def updateGradInput(self, input, gradOutput):
        self.gradInput = [gradOutput.copy() for _ in input]
        return self.gradInput


class CMulTable(Module):
    """Element-wise product of the entries: ``y = x[0] * x[1] * ...``.

    Backward: ``gradInput[i] = g * prod_{j != i} x[j]`` (no division, so zeros are fine).
    Shape: a table of arrays of one shape -> an array of that shape.
    """

    input_kind = "table"

    def updateOutput(self, input):
        check_same_shapes(self, input)
        output = input[0].copy()
        for entry in input[1:]:
            output *= entry
        self.output = output
        return self.output

    def updateGradInput(self, input, gradOutput):
        grads = []
        for i in range(len(input)):
            grad = gradOutput.copy()
            for j, entry in enumerate(input):
                if j != i:
                    grad *= entry
            grads.append(grad)
        self.gradInput = grads
        return self.gradInput


class JoinTable(Module):
    """Concatenates the entries along axis ``dim``: ``y = np.concatenate(x, axis=dim)``.

    ``dim`` counts as ``np.concatenate`` does: 0 is the batch, negative from the
    end (Torch7's ``JoinTable(2)`` on (N, C) input is ``JoinTable(1)`` here).
    Backward: each entry gets its slice of ``g`` (a copy).
    Shape: arrays that agree on every axis but ``dim`` -> their concatenation.
    """

    input_kind = "table"

    def __init__(self, dim):
        super().__init__()
        self.dim = check_int("JoinTable", dim, "dim", low=None)

    def config(self):
        return {"dim": self.dim}

    def updateOutput(self, input):
        self.output = join(self, input, self.dim)
        return self.output

    def updateGradInput(self, input, gradOutput):
        sizes = [entry.shape[self.dim] for entry in input]
        self.gradInput = [part.copy() for part in split(gradOutput, sizes, self.dim)]
        return self.gradInput

    def __repr__(self):
        return f"JoinTable(dim={self.dim})"


class SelectTable(Module):
    """Entry ``index`` of the input table (a copy): ``y = x[index]``.

    ``index`` is 0-based; negative counts from the end, as Python lists.
    Backward: ``g`` at the selected entry, zeros of the right shapes everywhere else.
    Shape: a table -> its entry ``index`` (an array or a table).
    """

    input_kind = "table"

    def __init__(self, index):
        super().__init__()
        self.index = check_int("SelectTable", index, "index", low=None)

    def config(self):
        return {"index": self.index}

    def _check_index(self, input):
        if not -len(input) <= self.index < len(input):
            raise ValueError(f"{label(self)}: expected a table of more than "
                             f"{self.index if self.index >= 0 else -self.index - 1} entries, "
                             f"got {len(input)} (shapes {shape_of(input)})")

    def updateOutput(self, input):
        self._check_index(input)
        self.output = map_table(np.copy, input[self.index])
        return self.output

    def updateGradInput(self, input, gradOutput):
        self._check_index(input)
        grads = [map_table(np.zeros_like, entry) for entry in input]
        grads[self.index] = map_table(np.copy, gradOutput)
        self.gradInput = grads
        return self.gradInput

    def __repr__(self):
        return f"SelectTable(index={self.index})"
