"""Layers that only change the shape of their input."""

import numpy as np

from numtorch._checks import check_min_rank
from numtorch.module import Module


def fresh(array, source):
    """``array``, copied if it is a view of ``source`` (outputs never alias inputs)."""
    return array.copy() if np.may_share_memory(array, source) else array


class Flatten(Module):
    """``(N, d1, d2, ...) -> (N, d1 * d2 * ...)`` in C order, as ``torch.nn.Flatten``.

    Backward reshapes the gradient back to the input's shape.
    """

    def updateOutput(self, input):
        check_min_rank(self, input, 2)
        self.output = fresh(input.reshape(input.shape[0], -1), input)
        return self.output

    def updateGradInput(self, input, gradOutput):
        self.gradInput = fresh(gradOutput.reshape(input.shape), gradOutput)
        return self.gradInput
