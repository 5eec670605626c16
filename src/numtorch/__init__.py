"""numtorch: a neural-network library in NumPy built the Torch7 ``nn`` way.

``from numtorch import *`` gives every module, criterion and optimizer, as the
course notebook's ``from modules import *`` did.
"""

from numtorch.containers import Sequential
from numtorch.criterions import CrossEntropyCriterion
from numtorch.gradcheck import gradcheck
from numtorch.layers import (
    ELU,
    AvgPool2d,
    Conv2d,
    Flatten,
    Identity,
    LeakyReLU,
    Linear,
    LogSoftMax,
    MaxPool2d,
    ReLU,
    Sigmoid,
    SoftMax,
    SoftPlus,
    Tanh,
)
from numtorch.module import Criterion, Module
from numtorch.random import get_rng_state, manual_seed, set_rng_state

__version__ = "0.1.0"

__all__ = [
    "AvgPool2d",
    "Conv2d",
    "CrossEntropyCriterion",
    "Criterion",
    "ELU",
    "Flatten",
    "Identity",
    "LeakyReLU",
    "Linear",
    "LogSoftMax",
    "MaxPool2d",
    "Module",
    "ReLU",
    "Sequential",
    "Sigmoid",
    "SoftMax",
    "SoftPlus",
    "Tanh",
    "get_rng_state",
    "gradcheck",
    "manual_seed",
    "set_rng_state",
]
