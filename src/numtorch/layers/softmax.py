"""Softmax over the feature axis. Shape: input (N, C) -> output (N, C)."""

import numpy as np

from numtorch._checks import check_shape
from numtorch.module import Module


def log_softmax(x):
    """``x - logsumexp(x)`` along axis 1, stable for any finite x."""
    shifted = x - x.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


class SoftMax(Module):
    """``y_i = exp(x_i) / sum_j exp(x_j)``; ``gradInput = y * (g - sum_j g_j y_j)``, O(N*C)."""

    def updateOutput(self, input):
        check_shape(self, input, (None, None))
        shifted = np.exp(input - input.max(axis=1, keepdims=True))
        self.output = shifted / shifted.sum(axis=1, keepdims=True)
        return self.output

    def updateGradInput(self, input, gradOutput):
        y = self.output
        self.gradInput = y * (gradOutput - (gradOutput * y).sum(axis=1, keepdims=True))
        return self.gradInput


class LogSoftMax(Module):
    """``y_i = x_i - log sum_j exp(x_j)``; ``gradInput = g - exp(y) * sum_j g_j``, O(N*C)."""

    def updateOutput(self, input):
        check_shape(self, input, (None, None))
        self.output = log_softmax(input)
        return self.output

    def updateGradInput(self, input, gradOutput):
        self.gradInput = gradOutput - np.exp(self.output) * gradOutput.sum(axis=1, keepdims=True)
        return self.gradInput
