"""numtorch: a neural-network library in NumPy built the Torch7 ``nn`` way.

``from numtorch import *`` gives every module, criterion and optimizer, as the
course notebook's ``from modules import *`` did.
"""

from numtorch.containers import Sequential
from numtorch.criterions import CrossEntropyCriterion
from numtorch.gradcheck import gradcheck
from numtorch.io import load, save
from numtorch.layers import (
    ELU,
    Identity,
    LeakyReLU,
    Linear,
    LogSoftMax,
    ReLU,
    Sigmoid,
    SoftMax,
    SoftPlus,
    Tanh,
)
from numtorch.module import Criterion, Module
from numtorch.optim import SGD, Adam, AdamW, RMSprop
from numtorch.random import get_rng_state, manual_seed, set_rng_state

__version__ = "0.1.0"

__all__ = [
    "Adam",
    "AdamW",
    "CrossEntropyCriterion",
    "Criterion",
    "ELU",
    "Identity",
    "LeakyReLU",
    "Linear",
    "LogSoftMax",
    "Module",
    "RMSprop",
    "ReLU",
    "SGD",
    "Sequential",
    "Sigmoid",
    "SoftMax",
    "SoftPlus",
    "Tanh",
    "get_rng_state",
    "gradcheck",
    "load",
    "manual_seed",
    "save",
    "set_rng_state",
]
