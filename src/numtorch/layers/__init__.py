"""Layers, one file per family."""

from numtorch.layers.activation import ELU, Identity, LeakyReLU, ReLU, Sigmoid, SoftPlus, Tanh
from numtorch.layers.linear import Linear
from numtorch.layers.softmax import LogSoftMax, SoftMax

__all__ = [
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
