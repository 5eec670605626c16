"""Losses. Each returns a float and divides by the batch size, nowhere else."""

import numpy as np

from numtorch._checks import check_class_target
from numtorch.layers.softmax import log_softmax
from numtorch.module import Criterion


class CrossEntropyCriterion(Criterion):
    """Raw scores in, fused LogSoftMax + NLL: ``loss = -1/N sum_n log softmax(x_n)[y_n]``.

    Shape: input (N, C) scores; target (N,) integer labels or (N, C) one-hot.
    Backward: ``(softmax(x) - onehot(y)) / N``, stable for scores of any magnitude.
    """

    def updateOutput(self, input, target):
        labels, weights = check_class_target(self, input, target)
        logp = log_softmax(input)
        n = input.shape[0]
        if labels is not None:
            return -logp[np.arange(n), labels].sum() / n
        return -(weights * logp).sum() / n

    def updateGradInput(self, input, target):
        labels, weights = check_class_target(self, input, target)
        n = input.shape[0]
        grad = np.exp(log_softmax(input))
        if labels is not None:
            grad[np.arange(n), labels] -= 1
        else:
            grad = grad * weights.sum(axis=1, keepdims=True) - weights
        grad /= n
        self.gradInput = grad.astype(input.dtype, copy=False)
        return self.gradInput
