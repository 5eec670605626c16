"""The table of every module and criterion, checked by ``harness.py``.

Adding a layer to numtorch means adding one row here: how to build it with a
random shape, and how PyTorch computes the same thing. References import
torch lazily (``F`` is ``torch.nn.functional``), so the table loads without it.
"""

import numpy as np

import numtorch as nt
from harness import CriterionCase, ModuleCase


def F():
    import torch.nn.functional

    return torch.nn.functional


def features(rng, batch, low=1, high=12):
    """A random (batch, C) input, C drawn from [low, high)."""
    return rng.standard_normal((batch, int(rng.integers(low, high)))) * 2


def elementwise(name, make, reference, **kwargs):
    """A row for a layer with no parameters applied to a random (N, C) input."""
    return ModuleCase(name, lambda rng, batch: (make(), features(rng, batch)), reference, **kwargs)


def linear(rng, batch):
    n_in, n_out = (int(v) for v in rng.integers(1, 20, size=2))
    return nt.Linear(n_in, n_out, bias=bool(rng.integers(2))), rng.standard_normal((batch, n_in))


MODULES = [
    ModuleCase("Linear", linear, lambda m, x, p, b: F().linear(x, *p)),
    elementwise("ReLU", nt.ReLU, lambda m, x, p, b: F().relu(x)),
    elementwise("LeakyReLU", lambda: nt.LeakyReLU(0.1),
                lambda m, x, p, b: F().leaky_relu(x, m.slope)),
    elementwise("ELU", lambda: nt.ELU(0.7), lambda m, x, p, b: F().elu(x, m.alpha)),
    elementwise("SoftPlus", nt.SoftPlus, lambda m, x, p, b: F().softplus(x)),
    elementwise("Sigmoid", nt.Sigmoid, lambda m, x, p, b: x.sigmoid()),
    elementwise("Tanh", nt.Tanh, lambda m, x, p, b: x.tanh()),
    elementwise("Identity", nt.Identity, lambda m, x, p, b: x * 1),
    elementwise("SoftMax", nt.SoftMax, lambda m, x, p, b: F().softmax(x, dim=1)),
    elementwise("LogSoftMax", nt.LogSoftMax, lambda m, x, p, b: F().log_softmax(x, dim=1)),
    ModuleCase(
        "Sequential",
        lambda rng, batch: (
            nt.Sequential(nt.Linear(5, 7), nt.Tanh(), nt.Linear(7, 3), nt.LogSoftMax()),
            rng.standard_normal((batch, 5)),
        ),
        lambda m, x, p, b: F().log_softmax(F().linear(F().linear(x, p[0], p[1]).tanh(), p[2], p[3]),
                                           dim=1),
    ),
]


def labels(rng, batch, classes):
    return rng.integers(0, classes, size=batch)


def one_hot(rng, batch, classes):
    return np.eye(classes)[labels(rng, batch, classes)]


def scores_and_target(make, target_kind):
    def build(rng, batch):
        classes = int(rng.integers(2, 10))
        target = labels(rng, batch, classes) if target_kind == "labels" else one_hot(rng, batch, classes)
        return make(), rng.standard_normal((batch, classes)) * 3, target

    return build


def torch_labels(target):
    """The class indices PyTorch wants, from labels or one-hot rows."""
    return target if target.ndim == 1 else target.argmax(dim=1)


CRITERIONS = [
    CriterionCase("CrossEntropyCriterion/labels",
                  scores_and_target(nt.CrossEntropyCriterion, "labels"),
                  lambda c, x, t: F().cross_entropy(x, t)),
    CriterionCase("CrossEntropyCriterion/one-hot",
                  scores_and_target(nt.CrossEntropyCriterion, "one-hot"),
                  lambda c, x, t: F().cross_entropy(x, torch_labels(t))),
]
