"""Losses. Each returns a float and divides by the batch size, nowhere else.

Classification criterions take integer labels (N,) or one-hot (N, C) targets
(rows of class probabilities work too: the loss is weighted by them).
"""

import numpy as np

from numtorch._checks import check_class_target, check_regression_target, check_values_in, describe_value
from numtorch.layers.softmax import log_softmax
from numtorch.module import Criterion


class MSECriterion(Criterion):
    """Sum of squared errors over the batch size: ``loss = 1/N sum (x - t)^2``.

    Shape: input (N, *), target of the same shape (floats).
    Backward: ``2 (x - t) / N``.
    """

    def updateOutput(self, input, target):
        check_regression_target(self, input, target)
        return np.sum(np.square(input - target)) / input.shape[0]

    def updateGradInput(self, input, target):
        check_regression_target(self, input, target)
        self.gradInput = ((input - target) * (2 / input.shape[0])).astype(input.dtype, copy=False)
        return self.gradInput


LOG_INPUT_HINT = ("; for log-probabilities (a LogSoftMax output) use ClassNLLCriterion(log_input=True), "
                  "for raw scores CrossEntropyCriterion")


def _gather(owner, input, target, probabilities=True):
    """``(picked, weights, labels)``: the input at each label (weights None),
    or the whole input with the one-hot weights (labels None).

    With ``probabilities`` the input must lie in [0, 1]: log-probabilities or
    scores fed here by mistake would give a meaningless loss without a word.
    """
    labels, weights = check_class_target(owner, input, target)
    if probabilities:
        check_values_in(owner, input, 0, 1, "input probabilities (a SoftMax output)", LOG_INPUT_HINT)
    if labels is not None:
        return input[np.arange(input.shape[0]), labels], None, labels
    return input, weights, None


def _scatter(input, labels, weights, values):
    """The (N, C) gradient that is ``values`` at the targets (label gradient) or weighted by them."""
    if labels is None:
        return (weights * values).astype(input.dtype, copy=False)
    grad = np.zeros_like(input)
    grad[np.arange(input.shape[0]), labels] = values
    return grad


class ClassNLLCriterion(Criterion):
    """Negative log-likelihood: ``loss = -1/N sum_n log p_n[y_n]``.

    ``log_input=False`` (default, the notebook's multiclass log loss): input
    (N, C) probabilities (a SoftMax output), clamped below at ``EPS`` so a zero
    probability gives a finite loss; backward ``-1 / (N max(p, EPS))`` at the
    target. Values outside [0, 1] (log-probabilities or scores passed by
    mistake) raise a ``ValueError`` that says to pass ``log_input=True``.
    ``log_input=True``: input (N, C) log-probabilities (a LogSoftMax
    output), ``loss = -1/N sum_n x_n[y_n]`` and backward ``-1/N`` at the
    target, as PyTorch's ``nll_loss``.
    Target: (N,) integer labels or (N, C) one-hot (the loss is then
    ``-1/N sum t * log p``).
    """

    EPS = 1e-15

    def __init__(self, log_input=False):
        super().__init__()
        if not isinstance(log_input, (bool, np.bool_)):
            raise TypeError(
                f"ClassNLLCriterion: expected log_input as a bool, got {describe_value(log_input)}"
            )
        self.log_input = bool(log_input)

    def updateOutput(self, input, target):
        picked, weights, _ = _gather(self, input, target, probabilities=not self.log_input)
        logp = picked if self.log_input else np.log(np.maximum(picked, input.dtype.type(self.EPS)))
        total = np.sum(logp) if weights is None else np.sum(weights * logp)
        return -total / input.shape[0]

    def updateGradInput(self, input, target):
        picked, weights, labels = _gather(self, input, target, probabilities=not self.log_input)
        n = input.shape[0]
        if self.log_input:
            values = np.full_like(picked, -1 / n)
        else:
            values = -1 / (n * np.maximum(picked, input.dtype.type(self.EPS)))
        self.gradInput = _scatter(input, labels, weights, values)
        return self.gradInput

    def __repr__(self):
        return "ClassNLLCriterion(log_input=True)" if self.log_input else "ClassNLLCriterion"


class ClassNLLCriterionUnstable(Criterion):
    """``loss = -1/N sum_n log p_n[y_n]`` on probabilities, with no clamp (the notebook's first version).

    A zero probability at the target gives ``inf``: use ``ClassNLLCriterion``
    or ``CrossEntropyCriterion`` to train. Backward ``-1 / (N p)`` at the target.
    Shape: input (N, C) probabilities; target (N,) labels or (N, C) one-hot.
    ``EPS``: the course's clamp value; its tests clip this criterion's input to
    [EPS, 1 - EPS] before feeding it (``ClassNLLCriterion`` clamps at the same EPS).
    """

    EPS = 1e-15

    def updateOutput(self, input, target):
        picked, weights, _ = _gather(self, input, target)
        with np.errstate(divide="ignore", invalid="ignore"):
            logp = np.log(picked)
            total = np.sum(logp) if weights is None else np.sum(weights * logp, where=weights != 0)
        return -total / input.shape[0]

    def updateGradInput(self, input, target):
        picked, weights, labels = _gather(self, input, target)
        n = input.shape[0]
        if weights is None:
            with np.errstate(divide="ignore"):
                self.gradInput = _scatter(input, labels, None, -1 / (n * picked))
        else:
            # Only the target classes count: a zero probability elsewhere is no NaN.
            grad = np.zeros_like(input)
            np.divide(-weights, n * picked, out=grad, where=weights != 0, casting="unsafe")
            self.gradInput = grad
        return self.gradInput


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


class BCECriterion(Criterion):
    """Binary cross-entropy on probabilities, summed over elements and divided by the batch size.

    ``loss = -1/N sum [t log x + (1 - t) log(1 - x)]``, each log clamped at
    -100 as PyTorch (so x = 0 or 1 gives a finite loss). This is PyTorch's
    ``binary_cross_entropy(reduction='sum') / N``, not its default mean over
    every element: numtorch criterions divide by the batch size only.
    Backward: ``(x - t) / (N max(x (1 - x), 1e-12))``.
    Shape: input (N, *) probabilities in [0, 1]; target of the same shape in [0, 1].
    """

    LOG_FLOOR = -100.0
    EPS = 1e-12

    def _check(self, input, target):
        check_values_in(self, input, 0, 1)
        check_regression_target(self, input, target, low=0, high=1)

    def updateOutput(self, input, target):
        self._check(input, target)
        floor = input.dtype.type(self.LOG_FLOOR)
        with np.errstate(divide="ignore"):
            log_x = np.maximum(np.log(input), floor)
            log_1mx = np.maximum(np.log1p(-input), floor)
        return -np.sum(target * log_x + (1 - target) * log_1mx) / input.shape[0]

    def updateGradInput(self, input, target):
        self._check(input, target)
        denominator = np.maximum(input * (1 - input), input.dtype.type(self.EPS)) * input.shape[0]
        self.gradInput = ((input - target) / denominator).astype(input.dtype, copy=False)
        return self.gradInput
