"""numtorch: a neural-network library in NumPy built the Torch7 ``nn`` way.

``from numtorch import *`` gives every module, criterion and optimizer, as the
course notebook's ``from modules import *`` did.
"""

from numtorch import _launcher  # noqa: F401  (first: limits BLAS threads under mpiexec before NumPy loads)
from numtorch.containers import Concat, ConcatTable, Container, ParallelTable, Sequential
from numtorch.criterions import (
    BCECriterion,
    ClassNLLCriterion,
    ClassNLLCriterionUnstable,
    CrossEntropyCriterion,
    MSECriterion,
)
from numtorch.distributed import SyncBatchNormalization
from numtorch.gradcheck import gradcheck
from numtorch.io import load, save
from numtorch.layers import (
    ELU,
    AvgPool2d,
    BatchNormalization,
    CAddTable,
    ChannelwiseScaling,
    CMulTable,
    Conv2d,
    Dropout,
    Flatten,
    GlobalAvgPool2d,
    Identity,
    JoinTable,
    LeakyReLU,
    Linear,
    LogSoftMax,
    MaxPool2d,
    ReLU,
    SelectTable,
    Sigmoid,
    SoftMax,
    SoftPlus,
    Tanh,
)
from numtorch.module import Criterion, Module
from numtorch.optim import SGD, Adam, AdamW, RMSprop, adam_optimizer, sgd_momentum
from numtorch.random import get_rng_state, manual_seed, set_rng_state
from numtorch.threads import get_num_threads, set_num_threads

__version__ = "0.1.0"

__all__ = [
    "Adam",
    "AdamW",
    "AvgPool2d",
    "BCECriterion",
    "BatchNormalization",
    "CAddTable",
    "CMulTable",
    "ChannelwiseScaling",
    "ClassNLLCriterion",
    "ClassNLLCriterionUnstable",
    "Concat",
    "ConcatTable",
    "Container",
    "Conv2d",
    "CrossEntropyCriterion",
    "Criterion",
    "Dropout",
    "ELU",
    "Flatten",
    "GlobalAvgPool2d",
    "Identity",
    "JoinTable",
    "LeakyReLU",
    "Linear",
    "LogSoftMax",
    "MSECriterion",
    "MaxPool2d",
    "Module",
    "ParallelTable",
    "RMSprop",
    "ReLU",
    "SGD",
    "SelectTable",
    "Sequential",
    "Sigmoid",
    "SoftMax",
    "SoftPlus",
    "SyncBatchNormalization",
    "Tanh",
    "adam_optimizer",
    "get_num_threads",
    "get_rng_state",
    "gradcheck",
    "load",
    "manual_seed",
    "save",
    "set_num_threads",
    "set_rng_state",
    "sgd_momentum",
]
