"""Fully connected layer."""

import numpy as np

from numtorch._blas import add_matmul_tn, affine, matmul
from numtorch._checks import check_positive_int, check_shape
from numtorch.module import Module, matching
from numtorch.random import generator


class Linear(Module):
    """Affine map ``y = x W^T + b``.

    Args: ``n_in``, ``n_out``, ``bias=True``. ``W`` is (n_out, n_in), ``b`` is
    (n_out,); both start uniform in [-1/sqrt(n_in), 1/sqrt(n_in)].
    Shape: input (N, n_in) -> output (N, n_out).
    Backward: ``gradInput = g W``, ``gradW += g^T x``, ``gradb += sum_n g``
    (each product one BLAS call; ``gradW`` accumulates in place).
    """

    _parameters = ("W", "b")
    _gradients = ("gradW", "gradb")

    def __init__(self, n_in, n_out, bias=True):
        super().__init__()
        self.n_in = check_positive_int("Linear", n_in, "n_in")
        self.n_out = check_positive_int("Linear", n_out, "n_out")
        stdv = 1.0 / np.sqrt(self.n_in)
        rng = generator()
        self.W = rng.uniform(-stdv, stdv, size=(self.n_out, self.n_in)).astype(np.float32)
        self.gradW = np.zeros_like(self.W)
        self.b = self.gradb = None
        if bias:
            self.b = rng.uniform(-stdv, stdv, size=self.n_out).astype(np.float32)
            self.gradb = np.zeros_like(self.b)

    def config(self):
        return {"n_in": self.n_in, "n_out": self.n_out, "bias": self.b is not None}

    @staticmethod
    def array_shapes(n_in, n_out, bias=True):
        n_in = check_positive_int("Linear", n_in, "n_in")
        n_out = check_positive_int("Linear", n_out, "n_out")
        return {"W": (n_out, n_in), "b": (n_out,) if bias else None}

    def updateOutput(self, input):
        check_shape(self, input, (None, self.n_in))
        self.output = affine(input, matching(self.W, input.dtype), matching(self.b, input.dtype))
        return self.output

    def updateGradInput(self, input, gradOutput):
        self.gradInput = matmul(gradOutput, matching(self.W, gradOutput.dtype))
        return self.gradInput

    def accGradParameters(self, input, gradOutput):
        add_matmul_tn(self.gradW, gradOutput, input)
        if self.b is not None:
            self.gradb += gradOutput.sum(axis=0)

    def __repr__(self):
        bias = "" if self.b is not None else ", bias=False"
        return f"Linear({self.n_in} -> {self.n_out}{bias})"
