"""Layers, one file per family."""

from numtorch.layers.activation import ELU, Identity, LeakyReLU, ReLU, Sigmoid, SoftPlus, Tanh
from numtorch.layers.conv import Conv2d
from numtorch.layers.dropout import Dropout
from numtorch.layers.linear import Linear
from numtorch.layers.normalization import BatchNormalization, ChannelwiseScaling
from numtorch.layers.pooling import AvgPool2d, GlobalAvgPool2d, MaxPool2d
from numtorch.layers.shape import Flatten
from numtorch.layers.softmax import LogSoftMax, SoftMax
from numtorch.layers.table import CAddTable, CMulTable, JoinTable, SelectTable

__all__ = [
    "AvgPool2d",
    "BatchNormalization",
    "CAddTable",
    "CMulTable",
    "ChannelwiseScaling",
    "Conv2d",
    "Dropout",
    "ELU",
    "Flatten",
    "GlobalAvgPool2d",
    "Identity",
    "JoinTable",
    "LeakyReLU",
    "Linear",
    "LogSoftMax",
    "MaxPool2d",
    "ReLU",
    "SelectTable",
    "Sigmoid",
    "SoftMax",
    "SoftPlus",
    "Tanh",
]
