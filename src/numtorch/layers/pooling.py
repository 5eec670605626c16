"""2-D max and average pooling on NCHW input.

Both work channels-last internally (as Conv2d) and loop over the kh * kw
kernel offsets only; each step reads one strided slice of the (padded) input
for every window at once. Where the stride equals the kernel, the input is
unpadded and its size divisible by the kernel, the windows tile the input
exactly: the input is reshaped to (N, Ho, kh, Wo, kw, C) and the backward
pass writes every input position once instead of adding into zeros.
"""

import numpy as np

from numtorch._checks import check_pair, check_shape, check_window
from numtorch.layers._spatial import (
    Scratch,
    channels_last,
    offset_slices,
    output_size,
    padded_channels_last,
)
from numtorch.module import Module


class _Pool2d(Module):
    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        name = type(self).__name__
        self.kernel_size = check_pair(name, kernel_size, "kernel_size", 1)
        self.stride = self.kernel_size if stride is None else check_pair(name, stride, "stride", 1)
        self.padding = check_pair(name, padding, "padding", 0)
        if any(2 * p > k for p, k in zip(self.padding, self.kernel_size)):
            raise ValueError(
                f"{name}: expected padding at most half the kernel size {self.kernel_size}, "
                f"got {self.padding}"
            )
        self._scratch = Scratch()

    def config(self):
        return {"kernel_size": self.kernel_size, "stride": self.stride, "padding": self.padding}

    def _check(self, input):
        check_shape(self, input, (None, None, None, None))
        check_window(self, input, self.kernel_size, self.padding)
        return output_size(input.shape[2:], self.kernel_size, self.stride, self.padding)

    def _tiles(self, input):
        """Whether the windows tile the input exactly (the reshape path)."""
        return (self.stride == self.kernel_size and self.padding == (0, 0)
                and input.shape[2] % self.kernel_size[0] == 0
                and input.shape[3] % self.kernel_size[1] == 0)

    def _blocks(self, array):
        """NCHW ``array`` as (N, Ho, kh, Wo, kw, C) blocks (the reshape path; a view)."""
        n, c, h, w = array.shape
        kh, kw = self.kernel_size
        return channels_last(array).reshape(n, h // kh, kh, w // kw, kw, c)

    def _grad_input(self, input, gradOutput, window_grad):
        """gradInput from ``window_grad(i, j)``: the gradient at offset (i, j) of every window (NHWC)."""
        n, c, h, w = input.shape
        out_size = gradOutput.shape[2:]
        if self._tiles(input):
            grad = np.empty((n, out_size[0], self.kernel_size[0], out_size[1], self.kernel_size[1], c),
                            gradOutput.dtype)
            for i, j, _, _ in offset_slices(self.kernel_size, self.stride, out_size):
                grad[:, :, i, :, j, :] = window_grad(i, j)
            return grad.reshape(n, h, w, c).transpose(0, 3, 1, 2)
        ph, pw = self.padding
        grad = np.zeros((n, h + 2 * ph, w + 2 * pw, c), gradOutput.dtype)
        for i, j, rows_at, cols_at in offset_slices(self.kernel_size, self.stride, out_size):
            grad[:, rows_at, cols_at, :] += window_grad(i, j)
        return grad[:, ph:ph + h, pw:pw + w, :].transpose(0, 3, 1, 2)

    def __repr__(self):
        args = f"kernel_size={self.kernel_size}"
        if self.stride != self.kernel_size:
            args += f", stride={self.stride}"
        if self.padding != (0, 0):
            args += f", padding={self.padding}"
        return f"{type(self).__name__}({args})"


class MaxPool2d(_Pool2d):
    """Maximum over each kh x kw window: ``y[n, c, h, w] = max_{i, j} x_pad[n, c, s h + i, s w + j]``.

    Args: ``kernel_size`` (int or pair), ``stride=None`` (the kernel size),
    ``padding=0`` (at most half the kernel; padded positions never win).
    Shape: input (N, C, H, W) -> output (N, C, Ho, Wo), ``Ho = floor((H + 2 ph - kh) / sh) + 1``.
    Backward: each window's gradient goes to one position, its first maximum
    in row-major order (as PyTorch on ties). A window holding a NaN outputs NaN, as PyTorch;
    its gradient then goes to one position of the window, not necessarily PyTorch's (the last NaN).
    """

    def _windows(self, input, out_size):
        """For each kernel offset, row-major, the (N, Ho, Wo, C) view of what every window holds there."""
        offsets = offset_slices(self.kernel_size, self.stride, out_size)
        if self._tiles(input):
            blocks = self._blocks(input)
            return [blocks[:, :, i, :, j, :] for i, j, _, _ in offsets]
        padded = padded_channels_last(self._scratch, input, self.padding, fill=-np.inf)
        return [padded[:, rows_at, cols_at, :] for _, _, rows_at, cols_at in offsets]

    def updateOutput(self, input):
        values = self._windows(input, self._check(input))
        best = np.maximum(values[0], values[-1]) if len(values) > 1 else values[0].copy()
        for value in values[1:-1]:
            np.maximum(best, value, out=best)
        # The first maximum of each window: its offset index is the number of
        # leading offsets that hold no maximum yet (comparisons and additions of
        # booleans run much faster than np.where or boolean indexing).
        found = values[0] == best
        argmax = np.zeros(best.shape, np.uint8 if len(values) <= 256 else np.int32)
        for value in values[1:]:
            argmax += ~found
            found |= value == best
        self._argmax = argmax
        self.output = best.transpose(0, 3, 1, 2)
        return self.output

    def updateGradInput(self, input, gradOutput):
        grad = channels_last(gradOutput)
        kw = self.kernel_size[1]
        self.gradInput = self._grad_input(input, gradOutput,
                                          lambda i, j: grad * (self._argmax == i * kw + j))
        return self.gradInput


class AvgPool2d(_Pool2d):
    """Mean over each kh x kw window: ``y[n, c, h, w] = sum_{i, j} x_pad[n, c, s h + i, s w + j] / (kh kw)``.

    Args: ``kernel_size`` (int or pair), ``stride=None`` (the kernel size),
    ``padding=0`` (zeros, counted in the mean, as PyTorch's default).
    Shape: input (N, C, H, W) -> output (N, C, Ho, Wo), ``Ho = floor((H + 2 ph - kh) / sh) + 1``.
    Backward: every position of a window receives its gradient / (kh kw).
    """

    def updateOutput(self, input):
        out_size = self._check(input)
        scale = input.dtype.type(1.0 / (self.kernel_size[0] * self.kernel_size[1]))
        if self._tiles(input):
            total = self._blocks(input).sum(axis=(2, 4))
        else:
            padded = padded_channels_last(self._scratch, input, self.padding)
            slices = offset_slices(self.kernel_size, self.stride, out_size)
            total = padded[:, slices[0][2], slices[0][3], :].copy()
            for _, _, rows_at, cols_at in slices[1:]:
                total += padded[:, rows_at, cols_at, :]
        total *= scale
        self.output = total.transpose(0, 3, 1, 2)
        return self.output

    def updateGradInput(self, input, gradOutput):
        scale = gradOutput.dtype.type(1.0 / (self.kernel_size[0] * self.kernel_size[1]))
        grad = channels_last(gradOutput) * scale
        self.gradInput = self._grad_input(input, gradOutput, lambda i, j: grad)
        return self.gradInput


class GlobalAvgPool2d(Module):
    """Mean over all positions of each channel: ``y[n, c] = sum_{h, w} x[n, c, h, w] / (H W)``.

    The head of a ResNet (PyTorch's ``AdaptiveAvgPool2d(1)`` followed by ``flatten(1)``).
    Shape: input (N, C, H, W) -> output (N, C).
    Backward: every position receives ``g[n, c] / (H W)``.
    """

    def updateOutput(self, input):
        check_shape(self, input, (None, None, None, None))
        self.output = input.mean(axis=(2, 3))
        return self.output

    def updateGradInput(self, input, gradOutput):
        n, c, h, w = input.shape
        grad = np.empty((n, h, w, c), gradOutput.dtype)
        grad[...] = (gradOutput * gradOutput.dtype.type(1.0 / (h * w)))[:, None, None, :]
        # Channels-last memory, as the other spatial layers give.
        self.gradInput = grad.transpose(0, 3, 1, 2)
        return self.gradInput

