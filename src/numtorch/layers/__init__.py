"""Layers, one file per family."""

from numtorch.layers.activation import ELU, Identity, LeakyReLU, ReLU, Sigmoid, SoftPlus, Tanh
from numtorch.layers.dropout import Dropout
from numtorch.layers.linear import Linear
from numtorch.layers.normalization import BatchNormalization, ChannelwiseScaling
from numtorch.layers.softmax import LogSoftMax, SoftMax

__all__ = [
    "BatchNormalization",
    "ChannelwiseScaling",
    "Dropout",
    "ELU",
    "Identity",
    "LeakyReLU",
    "Linear",
    "LogSoftMax",
    "ReLU",
    "Sigmoid",
    "SoftMax",
    "SoftPlus",
    "Tanh",
]
