"""The preset networks of ``numtorch train --model``, as functions that build them.

- ``mlp``: Linear/ReLU layers on the flattened sample;
- ``cnn``: two Conv2d -> ReLU -> MaxPool2d blocks, then the dense layers;
- ``resnet``: a small residual network made of tables:
  ``residual_block(c)`` is Torch7's
  ``Sequential(ConcatTable(body, Identity()), CAddTable(), ReLU())``.

Each returns ``(model, input_shape)``: the network and the shape of one
sample it takes (what ``save(..., input_shape=...)`` records).
"""

import numpy as np

from numtorch.containers import ConcatTable, Sequential
from numtorch.layers import (
    BatchNormalization,
    CAddTable,
    ChannelwiseScaling,
    Conv2d,
    Flatten,
    GlobalAvgPool2d,
    Identity,
    Linear,
    MaxPool2d,
    ReLU,
)

PRESETS = ("mlp", "cnn", "resnet")
DEFAULT_HIDDEN = {"mlp": [256, 128], "cnn": [256, 128], "resnet": []}


def dense(width, hidden, classes):
    """Linear/ReLU layers of the ``hidden`` sizes from ``width`` features, then Linear to ``classes``."""
    layers = []
    for size in hidden:
        layers += [Linear(width, size), ReLU()]
        width = size
    return [*layers, Linear(width, classes)]


def conv_bn_relu(in_channels, out_channels):
    """Conv2d 3x3 (same size, no bias: the normalization removes it) -> BatchNorm -> scaling -> ReLU."""
    return [Conv2d(in_channels, out_channels, 3, bias=False),
            BatchNormalization(0.9, n_features=out_channels), ChannelwiseScaling(out_channels), ReLU()]


def residual_block(channels):
    """``y = relu(body(x) + x)``, body = two 3x3 convolutions with BatchNorm, as in ResNet.

    Written with tables: ConcatTable gives ``[body(x), x]``, CAddTable sums them.
    """
    body = Sequential(*conv_bn_relu(channels, channels), Conv2d(channels, channels, 3, bias=False),
                      BatchNormalization(0.9, n_features=channels), ChannelwiseScaling(channels))
    return Sequential(ConcatTable(body, Identity()), CAddTable(), ReLU())


def check_images(kind, sample_shape):
    if len(sample_shape) != 3:
        raise ValueError(f"--model {kind}: expected images (N, C, H, W), got samples of shape "
                         f"{tuple(sample_shape)}")


def mlp(sample_shape, classes, hidden=DEFAULT_HIDDEN["mlp"]):
    width = int(np.prod(sample_shape))
    return Sequential(*dense(width, hidden, classes)), (width,)


def cnn(sample_shape, classes, hidden=DEFAULT_HIDDEN["cnn"]):
    """On (C, H, W) images: Conv2d(3x3, 16) -> ReLU -> MaxPool2d(2), the same with 32 channels,
    Flatten, then ``hidden`` dense layers."""
    check_images("cnn", sample_shape)
    channels, height, width = sample_shape
    features = [Conv2d(channels, 16, 3), ReLU(), MaxPool2d(2),
                Conv2d(16, 32, 3), ReLU(), MaxPool2d(2), Flatten()]
    flat = 32 * (height // 2 // 2) * (width // 2 // 2)
    return Sequential(*features, *dense(flat, hidden, classes)), tuple(sample_shape)


def resnet(sample_shape, classes, hidden=DEFAULT_HIDDEN["resnet"]):
    """On (C, H, W) images: a stem (conv 16, BatchNorm, ReLU, MaxPool2d(2)), a residual stage of 16
    channels, a conv to 32 channels with MaxPool2d(2), a residual stage of 32 channels, then
    GlobalAvgPool2d and the dense layers (just Linear(32, classes) by default)."""
    check_images("resnet", sample_shape)
    channels = sample_shape[0]
    features = [*conv_bn_relu(channels, 16), MaxPool2d(2), residual_block(16),
                *conv_bn_relu(16, 32), MaxPool2d(2), residual_block(32), GlobalAvgPool2d()]
    return Sequential(*features, *dense(32, hidden, classes)), tuple(sample_shape)


def build(kind, sample_shape, classes, hidden=None):
    """The preset ``kind`` (``mlp``, ``cnn`` or ``resnet``); ``hidden=None`` takes its default sizes."""
    if kind not in PRESETS:
        raise ValueError(f"models: expected a preset in {PRESETS}, got {kind!r}")
    hidden = DEFAULT_HIDDEN[kind] if hidden is None else hidden
    return {"mlp": mlp, "cnn": cnn, "resnet": resnet}[kind](tuple(sample_shape), classes, hidden)
