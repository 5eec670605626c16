"""Dropout. Shape: any input (N, *) -> output of the same shape."""

import numpy as np

from numtorch._checks import check_number
from numtorch.module import Module
from numtorch.random import generator


class Dropout(Module):
    """Zeroes each element with probability ``p`` in training, scaling the rest by ``1/(1-p)``.

    Training: ``y = x * mask`` with ``mask`` 0 (probability p) or ``1/(1-p)``,
    drawn from ``numtorch.random`` for every forward (the same mask for float32
    and float64 data under one seed); ``gradInput = g * mask``.
    Evaluation: ``y = x`` (a copy) and ``gradInput = g``, so expected values
    agree between the two modes. ``0 <= p < 1``.
    """

    def __init__(self, p=0.5):
        super().__init__()
        self.p = check_number("Dropout", p, "p", low=0, high=1, high_open=True)
        self.mask = None

    def config(self):
        return {"p": self.p}

    def updateOutput(self, input):
        if not self.training:
            self.mask = None
            self.output = input.copy()
            return self.output
        scale = input.dtype.type(1 / (1 - self.p))
        # Uniforms drawn in float32 whatever the data's dtype: one seed, one mask.
        keep = generator().random(input.shape, dtype=np.float32) >= self.p
        self.mask = keep * scale
        self.output = input * self.mask
        return self.output

    def updateGradInput(self, input, gradOutput):
        # The mask of the last forward (None when it ran in evaluation mode).
        self.gradInput = gradOutput.copy() if self.mask is None else gradOutput * self.mask
        return self.gradInput

    def __repr__(self):
        return f"Dropout(p={self.p:g})"
