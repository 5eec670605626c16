"""Helpers shared by the spatial layers (Conv2d, MaxPool2d, AvgPool2d, GlobalAvgPool2d).

They work channels-last: an NCHW array is viewed as NHWC, so that the C
values of one position are contiguous and every copy or product reads long runs.
"""

import numpy as np
from numpy.lib.stride_tricks import as_strided


def output_size(size, kernel, stride, padding):
    """``floor((size + 2 padding - kernel) / stride) + 1`` for each spatial axis."""
    return tuple((s + 2 * p - k) // st + 1 for s, k, st, p in zip(size, kernel, stride, padding))


def channels_last(array):
    """An NCHW array viewed as NHWC (no copy)."""
    return array.transpose(0, 2, 3, 1)


class Scratch:
    """Internal work arrays kept between calls, reallocated when shape or dtype changes.

    Only arrays that never leave the layer live here: nothing a forward or
    backward returned is ever written by a later call.
    """

    def __init__(self):
        self.arrays = {}

    def get(self, name, shape, dtype, fill=None):
        array = self.arrays.get(name)
        if array is None or array.shape != shape or array.dtype != dtype:
            array = np.empty(shape, dtype) if fill is None else np.full(shape, fill, dtype)
            self.arrays[name] = array
        return array


def padded_channels_last(scratch, input, padding, fill=0):
    """``input`` (N, C, H, W) as (N, H + 2ph, W + 2pw, C), the border set to ``fill``.

    Without padding this is a view of the input; with padding the interior of a
    scratch array (whose border keeps ``fill``) is overwritten.
    """
    ph, pw = padding
    if ph == 0 and pw == 0:
        return channels_last(input)
    n, c, h, w = input.shape
    padded = scratch.get("padded", (n, h + 2 * ph, w + 2 * pw, c), input.dtype, fill)
    padded[:, ph:ph + h, pw:pw + w, :] = channels_last(input)
    return padded


def windows(padded, kernel, stride, out_size):
    """A read-only view (N, Ho, Wo, kh, kw, C) of every window of NHWC ``padded``."""
    sn, sh, sw, sc = padded.strides
    n, c = padded.shape[0], padded.shape[3]
    shape = (n, *out_size, *kernel, c)
    strides = (sn, sh * stride[0], sw * stride[1], sh, sw, sc)
    return as_strided(padded, shape, strides, writeable=False)


def offset_slices(kernel, stride, out_size):
    """For each kernel offset (i, j), row-major, the slices of the padded input it reads."""
    (kh, kw), (sh, sw), (ho, wo) = kernel, stride, out_size
    return [
        (i, j, slice(i, i + sh * (ho - 1) + 1, sh), slice(j, j + sw * (wo - 1) + 1, sw))
        for i in range(kh)
        for j in range(kw)
    ]
