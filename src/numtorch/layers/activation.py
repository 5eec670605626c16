"""Element-wise non-linearities. Shape: any input (N, *) -> output of the same shape."""

import numpy as np

from numtorch._checks import check_number
from numtorch._table import map_table
from numtorch.module import Module


class Identity(Module):
    """``y = x`` for an array or a table (the output is a copy, so callers may keep it).

    The skip branch of a residual block: ``ConcatTable(body, Identity())``.
    """

    input_kind = "any"

    def updateOutput(self, input):
        self.output = map_table(np.copy, input)
        return self.output

    def updateGradInput(self, input, gradOutput):
        self.gradInput = map_table(np.copy, gradOutput)
        return self.gradInput


def memory_rows(array, min_row=256):
    """``array``'s elements in memory order as a C-contiguous 2-D view, or None.

    Possible when the array is an axis permutation of one contiguous block: a
    C-contiguous array, or the NCHW view of a channels-last Conv2d output. A
    row is the shortest trailing block (in memory order) of at least
    ``min_row`` elements, so that NumPy's inner loops run long.
    """
    if array.size == 0:
        return None
    view = array
    if not array.flags.c_contiguous:
        view = array.transpose(np.argsort(array.strides, kind="stable")[::-1])
        if not view.flags.c_contiguous:
            return None
    row = 1
    for size in reversed(view.shape):
        row *= size
        if row >= min_row:
            break
    return view.reshape(-1, row)


class ReLU(Module):
    """``y = max(x, 0)``; ``dy/dx = 1[x > 0]``.

    The output keeps the input's memory order (a channels-last conv output
    stays channels-last) and is computed over the memory as rows against a
    zero row kept as scratch: NumPy's vectorised ``maximum`` takes two arrays
    (against a scalar it runs about 2.5x slower), and walking an NCHW view of
    channels-last memory element by element about 4x slower.
    """

    def _zero_row(self, length, dtype):
        zeros = getattr(self, "_zeros", None)
        if zeros is None or zeros.shape != (length,) or zeros.dtype != dtype:
            zeros = self._zeros = np.zeros(length, dtype)
        return zeros

    def updateOutput(self, input):
        output = np.empty_like(input)
        rows = memory_rows(input) if output.strides == input.strides else None
        if rows is None:
            np.maximum(input, input.dtype.type(0), out=output)
        else:
            np.maximum(rows, self._zero_row(rows.shape[1], input.dtype), out=memory_rows(output))
        self.output = output
        return self.output

    def updateGradInput(self, input, gradOutput):
        # A float mask multiplied in place: NumPy's float-times-bool loop casts
        # element by element and runs ~15% slower over the whole pass.
        grad = (input > 0).astype(gradOutput.dtype)
        grad *= gradOutput
        self.gradInput = grad
        return self.gradInput


class LeakyReLU(Module):
    """``y = x`` for x > 0, ``slope * x`` otherwise (slope=0.03 as the course)."""

    def __init__(self, slope=0.03):
        super().__init__()
        self.slope = check_number("LeakyReLU", slope, "slope", low=0)

    def config(self):
        return {"slope": self.slope}

    def updateOutput(self, input):
        self.output = np.where(input > 0, input, input * input.dtype.type(self.slope))
        return self.output

    def updateGradInput(self, input, gradOutput):
        self.gradInput = np.where(input > 0, gradOutput, gradOutput * gradOutput.dtype.type(self.slope))
        return self.gradInput

    def __repr__(self):
        return f"LeakyReLU(slope={self.slope:g})"


class ELU(Module):
    """``y = x`` for x > 0, ``alpha * (exp(x) - 1)`` otherwise; ``dy/dx = y + alpha`` there."""

    def __init__(self, alpha=1.0):
        super().__init__()
        self.alpha = check_number("ELU", alpha, "alpha", low=0)

    def config(self):
        return {"alpha": self.alpha}

    def updateOutput(self, input):
        alpha = input.dtype.type(self.alpha)
        # expm1 of min(x, 0): no overflow for large positive x, exact near 0.
        self.output = np.where(input > 0, input, alpha * np.expm1(np.minimum(input, 0)))
        return self.output

    def updateGradInput(self, input, gradOutput):
        alpha = gradOutput.dtype.type(self.alpha)
        slope = np.where(input > 0, 1, alpha * np.exp(np.minimum(input, 0))).astype(gradOutput.dtype)
        self.gradInput = gradOutput * slope
        return self.gradInput

    def __repr__(self):
        return f"ELU(alpha={self.alpha:g})"


class SoftPlus(Module):
    """``y = log(1 + exp(x))``, and ``y = x`` where x > 20 (as PyTorch); ``dy/dx = sigmoid(x)``."""

    THRESHOLD = 20.0

    def updateOutput(self, input):
        # log1p(exp(-|x|)) + max(x, 0) never overflows.
        soft = np.log1p(np.exp(-np.abs(input))) + np.maximum(input, 0)
        self.output = np.where(input > self.THRESHOLD, input, soft)
        return self.output

    def updateGradInput(self, input, gradOutput):
        slope = np.where(input > self.THRESHOLD, 1, sigmoid(input)).astype(gradOutput.dtype)
        self.gradInput = gradOutput * slope
        return self.gradInput


def sigmoid(x):
    """``1 / (1 + exp(-x))`` without overflow for either sign of x."""
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


class Sigmoid(Module):
    """``y = 1 / (1 + exp(-x))``; ``dy/dx = y (1 - y)``."""

    def updateOutput(self, input):
        self.output = sigmoid(input)
        return self.output

    def updateGradInput(self, input, gradOutput):
        y = self.output
        self.gradInput = gradOutput * y * (1 - y)
        return self.gradInput


class Tanh(Module):
    """``y = tanh(x)``; ``dy/dx = 1 - y^2``."""

    def updateOutput(self, input):
        self.output = np.tanh(input)
        return self.output

    def updateGradInput(self, input, gradOutput):
        y = self.output
        self.gradInput = gradOutput * (1 - y * y)
        return self.gradInput
