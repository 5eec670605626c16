"""Optimizers.

The notebook style: a function ``step(variables, gradients, config, state)``
that takes the (nested) lists a container's ``getParameters()`` and
``getGradParameters()`` return and updates the parameters in place; ``state``
is a dict the function keeps its running averages in between calls.
Both follow their ``torch.optim`` counterparts step for step.
"""

import numpy as np

from numtorch._checks import check_float_array, check_number
from numtorch.module import flatten


def _pairs(name, variables, gradients, config, state):
    """The flat lists of parameters and gradients, checked: float arrays, paired by shape."""
    for what, value in (("config", config), ("state", state)):
        if not isinstance(value, dict):
            raise TypeError(f"{name}: expected {what} as a dict, got {type(value).__name__}")
    params, grads = flatten(variables), flatten(gradients)
    for what, arrays in (("parameter", params), ("gradient", grads)):
        for i, array in enumerate(arrays):
            check_float_array(name, array, f"{what} {i}", batch=False)
    if len(params) != len(grads):
        raise ValueError(
            f"{name}: expected one gradient per parameter, "
            f"got {len(params)} parameters but {len(grads)} gradients"
        )
    for i, (p, g) in enumerate(zip(params, grads)):
        if p.shape != g.shape:
            raise ValueError(
                f"{name}: expected parameter {i} and its gradient of one shape, got {p.shape} and {g.shape}"
            )
    return params, grads


def sgd_momentum(variables, gradients, config, state):
    """SGD with momentum, as ``torch.optim.SGD(lr, momentum)``.

    ``buf = momentum * buf + grad`` (``buf = grad`` on the first step), then
    ``param -= learning_rate * buf``. config: ``learning_rate``, ``momentum``.
    state: ``momentum_buffer`` (one array per parameter).
    """
    params, grads = _pairs("sgd_momentum", variables, gradients, config, state)
    lr = check_number("sgd_momentum", config.get("learning_rate"), "config['learning_rate']", low=0)
    momentum = check_number("sgd_momentum", config.get("momentum", 0.0), "config['momentum']",
                            low=0, high=1)
    buffers = state.setdefault("momentum_buffer", [None] * len(params))
    for i, (param, grad) in enumerate(zip(params, grads)):
        if buffers[i] is None:
            buffers[i] = grad.copy()
        else:
            buffers[i] *= momentum
            buffers[i] += grad
        param -= param.dtype.type(lr) * buffers[i]


def adam_optimizer(variables, gradients, config, state):
    """Adam, as ``torch.optim.Adam(lr, betas=(beta1, beta2), eps)``.

    ``m = b1 m + (1 - b1) g``, ``v = b2 v + (1 - b2) g^2``,
    ``param -= lr / (1 - b1^t) * m / (sqrt(v / (1 - b2^t)) + eps)``.
    config: ``learning_rate``, ``beta1``, ``beta2``, ``epsilon``. state: ``m``, ``v``, ``t``.
    """
    name = "adam_optimizer"
    params, grads = _pairs(name, variables, gradients, config, state)
    lr = check_number(name, config.get("learning_rate"), "config['learning_rate']", low=0)
    beta1 = check_number(name, config.get("beta1", 0.9), "config['beta1']", low=0, high=1, high_open=True)
    beta2 = check_number(name, config.get("beta2", 0.999), "config['beta2']", low=0, high=1, high_open=True)
    eps = check_number(name, config.get("epsilon", 1e-8), "config['epsilon']", low=0)
    state.setdefault("m", [np.zeros_like(g) for g in grads])
    state.setdefault("v", [np.zeros_like(g) for g in grads])
    state["t"] = state.get("t", 0) + 1
    t = state["t"]
    step_size = lr / (1 - beta1**t)
    bias_correction2 = np.sqrt(1 - beta2**t)
    for param, grad, m, v in zip(params, grads, state["m"], state["v"]):
        m *= beta1
        m += (1 - beta1) * grad
        v *= beta2
        v += (1 - beta2) * grad * grad
        denom = np.sqrt(v) / param.dtype.type(bias_correction2) + param.dtype.type(eps)
        param -= param.dtype.type(step_size) * m / denom
