"""The public names: ``from numtorch import *`` gives every module, criterion and optimizer."""

import inspect

import numtorch
import numtorch.criterions
import numtorch.layers
from numtorch.module import Criterion, Module


def star_import():
    namespace = {}
    exec("from numtorch import *", namespace)
    return namespace


def test_star_import_gives_the_notebook_names():
    namespace = star_import()
    for name in ["Sequential", "Linear", "SoftMax", "LogSoftMax", "Dropout", "ReLU", "LeakyReLU", "ELU",
                 "SoftPlus", "Sigmoid", "Tanh", "Identity", "BatchNormalization", "ChannelwiseScaling",
                 "MSECriterion", "ClassNLLCriterion", "ClassNLLCriterionUnstable", "CrossEntropyCriterion",
                 "BCECriterion", "sgd_momentum", "adam_optimizer", "Module", "Criterion", "gradcheck",
                 "manual_seed"]:
        assert name in namespace, f"from numtorch import * lacks {name}"


def public_classes(module, base):
    return {name for name, value in vars(module).items()
            if inspect.isclass(value) and issubclass(value, base) and not name.startswith("_")}


def test_every_module_and_criterion_class_is_exported():
    namespace = star_import()
    layers = set()
    for _, submodule in inspect.getmembers(numtorch.layers, inspect.ismodule):
        layers |= public_classes(submodule, Module) - {"Module"}
    assert layers <= set(numtorch.layers.__all__)
    assert layers <= set(namespace)
    assert public_classes(numtorch.criterions, Criterion) <= set(namespace)


def test_all_lists_only_real_names():
    assert sorted(set(numtorch.__all__)) == sorted(numtorch.__all__)
    assert all(hasattr(numtorch, name) for name in numtorch.__all__)
    assert all(hasattr(numtorch.layers, name) for name in numtorch.layers.__all__)
