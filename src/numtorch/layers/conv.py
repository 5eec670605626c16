"""2-D convolution on NCHW input, computed as one matrix multiply over patches.

Internally the layer works channels-last: the patches of the (padded) input
are gathered through a strided view into a matrix ``cols`` of shape
(N * Ho * Wo, kh * kw * C), so that every row reads runs of C contiguous
values. The output array has the public NCHW shape and channels-last memory
(the next conv or pooling layer reads it without a copy).
"""

import numpy as np

from numtorch._blas import matmul, matmul_into, matmul_tn
from numtorch._checks import check_pair, check_positive_int, check_shape, check_window
from numtorch.layers._spatial import (
    Scratch,
    channels_last,
    offset_slices,
    output_size,
    padded_channels_last,
    windows,
)
from numtorch.module import Module, matching
from numtorch.random import generator


class Conv2d(Module):
    """2-D cross-correlation ``y[n, o] = b[o] + sum_{c, i, j} W[o, c, i, j] x_pad[n, c, s h + i, s w + j]``.

    Args: ``in_channels``, ``out_channels``, ``kernel_size`` (int or pair),
    ``stride=1``, ``padding=None`` (``k // 2``: keeps H and W for stride 1 and
    odd kernels), ``bias=True``. ``W`` is (out, in, kh, kw), ``b`` (out,), both
    uniform in [-1/sqrt(fan_in), 1/sqrt(fan_in)], fan_in = in * kh * kw.
    Shape: input (N, in, H, W) -> output (N, out, Ho, Wo),
    ``Ho = floor((H + 2 ph - kh) / sh) + 1`` (likewise Wo).
    Backward, with ``cols`` the patch matrix and ``g`` the gradOutput rows:
    ``gradW += g^T cols``, ``gradb += sum g``, ``gradInput`` = the rows of
    ``g W`` added back to the positions each patch was read from.

    The plain im2col form that every path below computes (``x_pad`` the
    zero-padded input, ``Wm = W.reshape(out, in * kh * kw)``)::

        patch[n, h, w] = x_pad[n, :, sh*h : sh*h + kh, sw*w : sw*w + kw].ravel()
        y[n, :, h, w] = Wm @ patch[n, h, w] + b
        gradW += sum over n, h, w of outer(g[n, :, h, w], patch[n, h, w])   (reshaped as W)
        gradb += sum over n, h, w of g[n, :, h, w]
        x_pad_grad[n, :, sh*h : sh*h + kh, sw*w : sw*w + kw] += (Wm.T @ g[n, :, h, w]).reshape(in, kh, kw)
        gradInput = x_pad_grad cropped to (H, W)

    Which path computes it: forward, ``gradW`` and ``gradb`` always use one
    channels-last patch matrix (``_columns``) with a column of ones for the
    bias, one GEMM each. ``gradInput``: stride 1 with more than one input
    channel, one GEMM per kernel offset accumulated into the padded grid with
    no scatter (``_shifted_grad_input``); one input channel, a single
    (M, kh kw) product whose columns are scattered per offset; any other
    stride, one GEMM per offset scattered through a strided slice.
    As Torch7's SpatialConvolutionMM, backward reuses the patch matrix that
    forward built when it is given the same input array (it rebuilds it for
    any other array): change an input in place between forward and backward
    and the weight gradient is the forward-time one.
    """

    _parameters = ("W", "b")
    _gradients = ("gradW", "gradb")

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=None, bias=True):
        super().__init__()
        self.in_channels = check_positive_int("Conv2d", in_channels, "in_channels")
        self.out_channels = check_positive_int("Conv2d", out_channels, "out_channels")
        self.kernel_size = check_pair("Conv2d", kernel_size, "kernel_size", 1)
        self.stride = check_pair("Conv2d", stride, "stride", 1)
        if padding is None:
            padding = (self.kernel_size[0] // 2, self.kernel_size[1] // 2)
        self.padding = check_pair("Conv2d", padding, "padding", 0)
        kh, kw = self.kernel_size
        stdv = 1.0 / np.sqrt(self.in_channels * kh * kw)
        rng = generator()
        shape = (self.out_channels, self.in_channels, kh, kw)
        self.W = rng.uniform(-stdv, stdv, size=shape).astype(np.float32)
        self.gradW = np.zeros_like(self.W)
        self.b = self.gradb = None
        if bias:
            self.b = rng.uniform(-stdv, stdv, size=self.out_channels).astype(np.float32)
            self.gradb = np.zeros_like(self.b)
        self._scratch = Scratch()
        self._cols_of = None
        self._rows_of = None

    def config(self):
        """The constructor arguments, ``padding`` resolved (``None`` became ``k // 2``)."""
        return {"in_channels": self.in_channels, "out_channels": self.out_channels,
                "kernel_size": self.kernel_size, "stride": self.stride, "padding": self.padding,
                "bias": self.b is not None}

    @staticmethod
    def array_shapes(in_channels, out_channels, kernel_size, stride=1, padding=None, bias=True):
        in_channels = check_positive_int("Conv2d", in_channels, "in_channels")
        out_channels = check_positive_int("Conv2d", out_channels, "out_channels")
        kh, kw = check_pair("Conv2d", kernel_size, "kernel_size", 1)
        return {"W": (out_channels, in_channels, kh, kw), "b": (out_channels,) if bias else None}

    def _weight_matrix(self, dtype):
        """``W`` as a (kh * kw * in, out) matrix in the column order of ``cols``, then ``b`` as a row."""
        k = self.kernel_size[0] * self.kernel_size[1] * self.in_channels
        matrix = np.empty((k + (self.b is not None), self.out_channels), dtype)
        matrix[:k] = self.W.transpose(2, 3, 1, 0).reshape(k, self.out_channels)
        if self.b is not None:
            matrix[k] = self.b
        return matrix

    def _columns(self, input):
        """The patch matrix (N * Ho * Wo, kh * kw * C [+ 1]) of ``input``, kept for backward.

        With a bias, the last column is ones: the one matrix multiply then adds
        ``b`` in forward, and ``g^T cols`` yields ``gradb`` as its last column in backward.
        """
        if self._cols_of is not None and self._cols_of[0] is input:
            return self._cols_of[1]
        n = input.shape[0]
        out_size = output_size(input.shape[2:], self.kernel_size, self.stride, self.padding)
        padded = padded_channels_last(self._scratch, input, self.padding)
        k = self.kernel_size[0] * self.kernel_size[1] * self.in_channels
        cols = self._scratch.get("cols", (n * out_size[0] * out_size[1], k + (self.b is not None)),
                                 input.dtype)
        patches = cols[:, :k].reshape(n, *out_size, *self.kernel_size, self.in_channels)
        if self.in_channels == 1:
            # One channel: a copy per kernel offset runs along whole image rows,
            # where the single strided copy would move kw values at a time.
            for i, j, rows_at, cols_at in offset_slices(self.kernel_size, self.stride, out_size):
                patches[:, :, :, i, j, :] = padded[:, rows_at, cols_at, :]
        else:
            np.copyto(patches, windows(padded, self.kernel_size, self.stride, out_size))
        if self.b is not None:
            cols[:, k] = 1
        self._cols_of = (input, cols)
        return cols

    def _rows(self, gradOutput):
        """gradOutput (N, out, Ho, Wo) as C-contiguous rows (N * Ho * Wo, out) in the order of ``cols``."""
        return np.ascontiguousarray(channels_last(gradOutput).reshape(-1, self.out_channels))

    def updateOutput(self, input):
        check_shape(self, input, (None, self.in_channels, None, None))
        check_window(self, input, self.kernel_size, self.padding)
        self._cols_of = None
        out = matmul(self._columns(input), self._weight_matrix(input.dtype))
        n = input.shape[0]
        out_size = output_size(input.shape[2:], self.kernel_size, self.stride, self.padding)
        self.output = out.reshape(n, *out_size, self.out_channels).transpose(0, 3, 1, 2)
        return self.output

    def updateGradInput(self, input, gradOutput):
        if self.stride == (1, 1) and self.in_channels > 1:
            self.gradInput = self._shifted_grad_input(input, gradOutput)
            return self.gradInput
        n, c, h, w = input.shape
        (kh, kw), (ph, pw) = self.kernel_size, self.padding
        out_size = gradOutput.shape[2:]
        rows = self._rows(gradOutput)
        # accGradParameters, called next by backward, reuses these rows (a copy
        # where gradOutput is not channels-last in memory) once.
        self._rows_of = (gradOutput, rows)
        # One (M, C) block per kernel offset, each contiguous, so that the
        # scatter below adds long runs rather than C values at a time.
        weights = matching(self.W, gradOutput.dtype).transpose(2, 3, 0, 1).reshape(kh * kw, -1, c)
        if c == 1:
            # One (M, kh kw) product instead of kh kw matrix-vector ones; offset k's block is column k.
            blocks = matmul(rows, np.ascontiguousarray(weights[:, :, 0].T)).T
        else:
            blocks = self._scratch.get("grad_cols", (kh * kw, rows.shape[0], c), gradOutput.dtype)
            for k in range(kh * kw):
                matmul_into(rows, weights[k], blocks[k])
        grad_padded = np.zeros((n, h + 2 * ph, w + 2 * pw, c), gradOutput.dtype)
        for i, j, rows_at, cols_at in offset_slices(self.kernel_size, self.stride, out_size):
            grad_padded[:, rows_at, cols_at, :] += blocks[i * kw + j].reshape(n, *out_size, c)
        self.gradInput = grad_padded[:, ph:ph + h, pw:pw + w, :].transpose(0, 3, 1, 2)
        return self.gradInput

    def _shifted_grad_input(self, input, gradOutput):
        """gradInput for stride 1: one GEMM per kernel offset, accumulated in place, no scatter.

        With stride 1, output pixel (h, w) reads the padded input at (h + i,
        w + j): on the flattened padded grid (N * Hp * Wp rows) that is a fixed
        shift of ``i * Wp + j`` rows. So gradOutput is laid on that grid (zeros
        beyond Ho, Wo, which also keeps a shift from wrapping into the next
        row), and offset (i, j) adds ``G W_ij`` to the rows starting at its
        shift: each product writes a contiguous block of the padded gradient
        with ``beta=1``, where the general path adds strided blocks.
        """
        n, c, h, w = input.shape
        (kh, kw), (ph, pw) = self.kernel_size, self.padding
        ho, wo = gradOutput.shape[2:]
        hp, wp = h + 2 * ph, w + 2 * pw
        dtype = gradOutput.dtype
        grid = self._scratch.get("grad_grid", (n, hp, wp, self.out_channels), dtype, fill=0)
        grid[:, :ho, :wo, :] = channels_last(gradOutput)
        rows = grid.reshape(-1, self.out_channels)
        count = rows.shape[0]
        grad = np.empty((count + (kh - 1) * wp + kw - 1, c), dtype)
        grad[count:] = 0
        weights = matching(self.W, dtype).transpose(2, 3, 0, 1).reshape(kh * kw, -1, c)
        for i, j, _, _ in offset_slices(self.kernel_size, self.stride, (ho, wo)):
            shift = i * wp + j
            # Offset (0, 0) comes first and writes every row of the grid; the rest add.
            matmul_into(rows, weights[i * kw + j], grad[shift:shift + count], accumulate=shift > 0)
        return grad[:count].reshape(n, hp, wp, c)[:, ph:ph + h, pw:pw + w, :].transpose(0, 3, 1, 2)

    def accGradParameters(self, input, gradOutput):
        kh, kw = self.kernel_size
        k = kh * kw * self.in_channels
        rows_of, self._rows_of = self._rows_of, None
        rows = rows_of[1] if rows_of is not None and rows_of[0] is gradOutput else self._rows(gradOutput)
        cols = self._columns(input)
        grad_matrix = matmul_tn(rows.astype(cols.dtype, copy=False), cols)
        self.gradW += grad_matrix[:, :k].reshape(-1, kh, kw, self.in_channels).transpose(0, 3, 1, 2)
        if self.b is not None:
            self.gradb += grad_matrix[:, k]

    def __repr__(self):
        args = f"{self.in_channels} -> {self.out_channels}, kernel_size={self.kernel_size}"
        if self.stride != (1, 1):
            args += f", stride={self.stride}"
        if self.padding != (0, 0):
            args += f", padding={self.padding}"
        if self.b is None:
            args += ", bias=False"
        return f"Conv2d({args})"
