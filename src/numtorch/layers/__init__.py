"""Layers, one file per family."""

from numtorch.layers.activation import ELU, Identity, LeakyReLU, ReLU, Sigmoid, SoftPlus, Tanh
from numtorch.layers.conv import Conv2d
from numtorch.layers.dropout import Dropout
from numtorch.layers.linear import Linear
from numtorch.layers.normalization import BatchNormalization, ChannelwiseScaling
from numtorch.layers.pooling import AvgPool2d, MaxPool2d
from numtorch.layers.shape import Flatten
from numtorch.layers.softmax import LogSoftMax, SoftMax

__all__ = [
    "AvgPool2d",
    "BatchNormalization",
    "ChannelwiseScaling",
    "Conv2d",
    "Dropout",
    "ELU",
    "Flatten",
    "Identity",
    "LeakyReLU",
    "Linear",
    "LogSoftMax",
    "MaxPool2d",
    "ReLU",
    "Sigmoid",
    "SoftMax",
    "SoftPlus",
    "Tanh",
]
