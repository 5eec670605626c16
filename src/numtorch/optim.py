"""Optimizers.

The notebook style: a function ``step(variables, gradients, config, state)``
that takes the (nested) lists a container's ``getParameters()`` and
``getGradParameters()`` return and updates the parameters in place; ``state``
is a dict the function keeps its running averages in between calls.
Both follow their ``torch.optim`` counterparts step for step.

The classes: ``SGD``, ``Adam``, ``AdamW``, ``RMSprop`` bound to a module
(``opt = Adam(model, lr=1e-3)``, then ``opt.zero_grad()``, forward, backward,
``opt.step()``), the schedules ``StepLR`` and ``CosineAnnealingLR`` and
``clip_grad_norm``; each follows its PyTorch counterpart step for step.
"""

import copy
import math
from abc import ABC, abstractmethod

import numpy as np

from numtorch._blas import axpy, scale_add
from numtorch._checks import (
    FLOAT_DTYPES,
    check_float_array,
    check_int,
    check_number,
    check_positive_int,
    label,
)
from numtorch.module import Module, flatten


def _check_dicts(name, config, state):
    for what, value in (("config", config), ("state", state)):
        if not isinstance(value, dict):
            raise TypeError(f"{name}: expected {what} as a dict, got {type(value).__name__}")


def _pairs(name, variables, gradients):
    """The flat lists of parameters and gradients, checked: float arrays, paired by shape."""
    params, grads = flatten(variables), flatten(gradients)
    for what, arrays in (("parameter", params), ("gradient", grads)):
        for i, array in enumerate(arrays):
            check_float_array(name, array, f"{what} {i}", batch=False)
    if len(params) != len(grads):
        raise ValueError(
            f"{name}: got {len(params)} parameters but {len(grads)} gradients "
            "(expected one gradient per parameter)"
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
    _check_dicts("sgd_momentum", config, state)
    params, grads = _pairs("sgd_momentum", variables, gradients)
    lr = check_number("sgd_momentum", config.get("learning_rate"), "config['learning_rate']", low=0)
    momentum = check_number("sgd_momentum", config.get("momentum", 0.0), "config['momentum']",
                            low=0, high=1)
    buffers = state.setdefault("momentum_buffer", [None] * len(params))
    for i, (param, grad) in enumerate(zip(params, grads)):
        if buffers[i] is None:
            buffers[i] = grad.copy()
        else:
            scale_add(buffers[i], momentum, grad)
        axpy(-lr, buffers[i], param)


def adam_optimizer(variables, gradients, config, state):
    """Adam, as ``torch.optim.Adam(lr, betas=(beta1, beta2), eps)``.

    ``m = b1 m + (1 - b1) g``, ``v = b2 v + (1 - b2) g^2``,
    ``param -= lr / (1 - b1^t) * m / (sqrt(v / (1 - b2^t)) + eps)``.
    config: ``learning_rate``, ``beta1``, ``beta2``, ``epsilon``. state: ``m``, ``v``, ``t``.
    """
    name = "adam_optimizer"
    _check_dicts(name, config, state)
    params, grads = _pairs(name, variables, gradients)
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


class Optimizer(ABC):
    """Base of the optimizer classes: bound to one module's parameters and gradients.

    ``step()`` updates every parameter in place from its gradient (the arrays
    ``getParameters()`` and ``getGradParameters()`` return, so the references
    stay valid); ``zero_grad()`` zeroes the gradients. ``state_dict()`` is
    plain values plus lists of arrays, so ``numtorch.io`` stores it without
    pickle. A subclass lists its hyper-parameters in ``_hyperparameters`` and
    validates them in ``configure``, its running buffers in ``_state_buffers``
    and, of those, the ones that can never be negative (running averages of
    squares) in ``_nonnegative_buffers``.
    """

    _hyperparameters = ()
    _state_buffers = ()
    _nonnegative_buffers = ()

    def __init__(self, model):
        if not isinstance(model, Module):
            raise TypeError(f"{type(self).__name__}: expected a numtorch Module, got {type(model).__name__}")
        self.model = model
        self.params, self.grads = _pairs(type(self).__name__, model.getParameters(),
                                         model.getGradParameters())
        if not self.params:
            raise ValueError(f"{type(self).__name__}: {label(model)} has no parameters to optimize "
                             "(expected a module with parameters)")
        self.step_count = 0
        self.buffers = {}

    def zero_grad(self):
        """Zero every gradient of the model (Torch7's ``zeroGradParameters``)."""
        self.model.zeroGradParameters()

    def step(self):
        """One update of every parameter from its current gradient."""
        self.step_count += 1
        for i, (param, grad) in enumerate(zip(self.params, self.grads)):
            self.update(i, param, grad)

    @abstractmethod
    def update(self, i, param, grad):
        """Update parameter ``i`` in place from its gradient (each optimizer's rule)."""

    def buffer(self, name, i, initial):
        """The ``i``-th array of the running buffer ``name``, created from ``initial(param, grad)``."""
        if name not in self.buffers:
            self.buffers[name] = [initial(p, g) for p, g in zip(self.params, self.grads)]
        return self.buffers[name][i]

    def hyperparameters(self):
        return {name: getattr(self, name) for name in self._hyperparameters}

    def state_dict(self):
        """``{"class", "hyperparameters", "step", "buffers": {name: [arrays]}}`` (copies)."""
        return {
            "class": type(self).__name__,
            "hyperparameters": self.hyperparameters(),
            "step": self.step_count,
            "buffers": {name: [a.copy() for a in arrays] for name, arrays in self.buffers.items()},
        }

    def load_state_dict(self, state):
        """Restore a ``state_dict()`` of the same optimizer class over parameters of the same shapes.

        The whole state is checked first (``check_state_dict``): a refused
        state leaves the optimizer as it was.
        """
        hyperparameters, buffers, step = self.check_state_dict(state)
        self.configure(**hyperparameters)
        self.buffers = buffers
        self.step_count = step

    def check_state_dict(self, state):
        """Check a ``state_dict()`` for this optimizer without changing it.

        The class, the hyper-parameters (as ``configure`` checks them), the
        step (an int >= 0), and every buffer: one known to this optimizer, one
        float32 or float64 array per parameter, of its shape, finite, and
        non-negative for a running average of squares. Returns
        ``(hyperparameters, buffers, step)``, the buffers as new arrays of the
        parameters' dtypes.
        """
        name = type(self).__name__
        who = f"{name}.load_state_dict"
        check_state(name, state, ("hyperparameters", "buffers", "step"))
        try:
            copy.copy(self).configure(**state["hyperparameters"])
        except TypeError as error:
            raise TypeError(f"{who}: hyperparameters {sorted(state['hyperparameters'])} do not fit {name} "
                            f"(expected {list(self._hyperparameters)}: {error})") from None
        step = check_int(who, state["step"], "step", low=0)
        if not isinstance(state["buffers"], dict):
            raise TypeError(f"{who}: expected buffers as a dict, got {type(state['buffers']).__name__}")
        unknown = sorted(set(state["buffers"]) - set(self._state_buffers))
        if unknown:
            raise ValueError(f"{who}: expected buffers among {list(self._state_buffers)}, got {unknown}")
        buffers = {}
        for key, arrays in state["buffers"].items():
            if not isinstance(arrays, (list, tuple)):
                raise TypeError(f"{who}: expected buffer {key!r} as a list of arrays, "
                                f"got {type(arrays).__name__}")
            if len(arrays) != len(self.params):
                raise ValueError(f"{who}: buffer {key!r} has {len(arrays)} arrays "
                                 f"for {len(self.params)} parameters")
            for i, (array, param) in enumerate(zip(arrays, self.params)):
                where = f"{who}: buffer {key!r}[{i}]"
                if not isinstance(array, np.ndarray) or array.dtype not in FLOAT_DTYPES:
                    raise TypeError(f"{where}: expected a float32 or float64 array, got "
                                    f"{getattr(array, 'dtype', type(array).__name__)}")
                if array.shape != param.shape:
                    raise ValueError(f"{where} has shape {array.shape}, the parameter {param.shape}")
                if not np.isfinite(array).all():
                    raise ValueError(f"{where}: expected finite values, got NaN or infinity")
                if key in self._nonnegative_buffers and (array < 0).any():
                    raise ValueError(f"{where}: expected a running average of squares (>= 0), "
                                     f"got {array.min()}")
            buffers[key] = [np.array(a, dtype=p.dtype) for a, p in zip(arrays, self.params)]
        return state["hyperparameters"], buffers, step

    def __repr__(self):
        return f"{type(self).__name__}({', '.join(f'{k}={v}' for k, v in self.hyperparameters().items())})"


def check_state(name, state, keys):
    """``state`` is a dict from ``state_dict()`` of class ``name``, with ``keys``."""
    if not isinstance(state, dict):
        raise TypeError(f"{name}.load_state_dict: expected a dict from {name}.state_dict(), "
                        f"got {type(state).__name__}")
    if state.get("class") != name:
        raise ValueError(f"{name}.load_state_dict: the state is of {state.get('class')!r}, not {name} "
                         f"(expected a {name}.state_dict())")
    missing = [key for key in keys if key not in state]
    if missing:
        raise ValueError(f"{name}.load_state_dict: expected the keys {list(keys)}, missing {missing}")
    if not isinstance(state["hyperparameters"], dict):
        raise TypeError(f"{name}.load_state_dict: expected hyperparameters as a dict, "
                        f"got {type(state['hyperparameters']).__name__}")


def _zeros(param, grad):
    return np.zeros_like(param)


def _check_betas(name, betas):
    if not isinstance(betas, (tuple, list)) or len(betas) != 2:
        raise ValueError(f"{name}: expected betas as a pair (beta1, beta2), got {betas!r}")
    return tuple(check_number(name, b, f"betas[{i}]", low=0, high=1, high_open=True)
                 for i, b in enumerate(betas))


class SGD(Optimizer):
    """Stochastic gradient descent with momentum, as ``torch.optim.SGD``.

    ``g = grad + weight_decay * param``; with momentum ``buf = momentum * buf + g``
    (``buf = g`` on the first step) and ``g = buf`` (Nesterov: ``g = g + momentum * buf``);
    then ``param -= lr * g``.
    """

    _hyperparameters = ("lr", "momentum", "nesterov", "weight_decay")
    _state_buffers = ("momentum_buffer",)

    def __init__(self, model, lr, momentum=0.0, nesterov=False, weight_decay=0.0):
        super().__init__(model)
        self.configure(lr, momentum, nesterov, weight_decay)

    def configure(self, lr, momentum=0.0, nesterov=False, weight_decay=0.0):
        self.lr = check_number("SGD", lr, "lr", low=0)
        self.momentum = check_number("SGD", momentum, "momentum", low=0, high=1)
        self.weight_decay = check_number("SGD", weight_decay, "weight_decay", low=0)
        if not isinstance(nesterov, (bool, np.bool_)):
            raise TypeError(f"SGD: expected nesterov as a bool, got {type(nesterov).__name__}")
        if nesterov and self.momentum == 0:
            raise ValueError(f"SGD: nesterov=True needs a momentum > 0 (expected momentum > 0, "
                             f"got {self.momentum})")
        self.nesterov = bool(nesterov)

    def update(self, i, param, grad):
        if self.weight_decay:
            grad = grad + self.weight_decay * param
        if self.momentum:
            buf = self.buffer("momentum_buffer", i, _zeros)
            if self.step_count == 1:
                buf[...] = grad
            else:
                scale_add(buf, self.momentum, grad)
            grad = grad + self.momentum * buf if self.nesterov else buf
        axpy(-self.lr, grad, param)


class Adam(Optimizer):
    """Adam, as ``torch.optim.Adam`` (``weight_decay`` is an L2 term added to the gradient).

    ``m = b1 m + (1 - b1) g``, ``v = b2 v + (1 - b2) g^2``,
    ``param -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)``.
    """

    _hyperparameters = ("lr", "betas", "eps", "weight_decay")
    _state_buffers = ("exp_avg", "exp_avg_sq")
    _nonnegative_buffers = ("exp_avg_sq",)
    decoupled = False

    def __init__(self, model, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        super().__init__(model)
        self.configure(lr, betas, eps, weight_decay)

    def configure(self, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        name = type(self).__name__
        self.lr = check_number(name, lr, "lr", low=0)
        self.betas = _check_betas(name, betas)
        self.eps = check_number(name, eps, "eps", low=0)
        self.weight_decay = check_number(name, weight_decay, "weight_decay", low=0)

    def update(self, i, param, grad):
        beta1, beta2 = self.betas
        if self.weight_decay and self.decoupled:
            param *= 1 - self.lr * self.weight_decay
        elif self.weight_decay:
            grad = grad + self.weight_decay * param
        m = self.buffer("exp_avg", i, _zeros)
        v = self.buffer("exp_avg_sq", i, _zeros)
        m *= beta1
        m += (1 - beta1) * grad
        v *= beta2
        v += (1 - beta2) * grad * grad
        # Python floats (not NumPy float64 scalars) keep float32 arithmetic float32.
        step_size = self.lr / (1 - beta1**self.step_count)
        denom = np.sqrt(v) / math.sqrt(1 - beta2**self.step_count) + self.eps
        param -= step_size * m / denom


class AdamW(Adam):
    """Adam with decoupled weight decay, as ``torch.optim.AdamW``.

    ``param *= 1 - lr * weight_decay`` before the Adam step (default decay 1e-2).
    """

    decoupled = True

    def __init__(self, model, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2):
        super().__init__(model, lr, betas, eps, weight_decay)


class RMSprop(Optimizer):
    """RMSprop, as ``torch.optim.RMSprop``.

    ``s = alpha s + (1 - alpha) g^2``; centered: ``a = alpha a + (1 - alpha) g`` and
    ``avg = sqrt(s - a^2) + eps``, else ``avg = sqrt(s) + eps``; with momentum
    ``buf = momentum * buf + g / avg``, ``param -= lr * buf``, else ``param -= lr * g / avg``.
    """

    _hyperparameters = ("lr", "alpha", "eps", "weight_decay", "momentum", "centered")
    _state_buffers = ("square_avg", "grad_avg", "momentum_buffer")
    _nonnegative_buffers = ("square_avg",)

    def __init__(self, model, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0,
                 centered=False):
        super().__init__(model)
        self.configure(lr, alpha, eps, weight_decay, momentum, centered)

    def configure(self, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0, centered=False):
        self.lr = check_number("RMSprop", lr, "lr", low=0)
        self.alpha = check_number("RMSprop", alpha, "alpha", low=0, high=1)
        self.eps = check_number("RMSprop", eps, "eps", low=0)
        self.weight_decay = check_number("RMSprop", weight_decay, "weight_decay", low=0)
        self.momentum = check_number("RMSprop", momentum, "momentum", low=0, high=1)
        if not isinstance(centered, (bool, np.bool_)):
            raise TypeError(f"RMSprop: expected centered as a bool, got {type(centered).__name__}")
        self.centered = bool(centered)

    def update(self, i, param, grad):
        if self.weight_decay:
            grad = grad + self.weight_decay * param
        square_avg = self.buffer("square_avg", i, _zeros)
        square_avg *= self.alpha
        square_avg += (1 - self.alpha) * grad * grad
        if self.centered:
            grad_avg = self.buffer("grad_avg", i, _zeros)
            grad_avg += (1 - self.alpha) * (grad - grad_avg)
            avg = np.sqrt(square_avg - grad_avg * grad_avg) + self.eps
        else:
            avg = np.sqrt(square_avg) + self.eps
        if self.momentum:
            buf = self.buffer("momentum_buffer", i, _zeros)
            buf *= self.momentum
            buf += grad / avg
            param -= self.lr * buf
        else:
            param -= self.lr * grad / avg


class LRScheduler(ABC):
    """Base of the learning-rate schedules: ``step()`` once per epoch sets ``optimizer.lr``.

    The rate is a closed-form function of the epoch count, ``lr_at(epoch)``, from
    the optimizer's rate when the schedule was made (``base_lr``).
    """

    _hyperparameters = ()

    def __init__(self, optimizer):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(self).__name__}: expected a numtorch Optimizer, "
                            f"got {type(optimizer).__name__}")
        self.optimizer = optimizer
        self.base_lr = optimizer.lr
        self.last_epoch = 0

    def step(self):
        self.last_epoch += 1
        self.optimizer.lr = self.lr_at(self.last_epoch)

    @abstractmethod
    def lr_at(self, epoch):
        """The learning rate after ``epoch`` epochs (each schedule's closed form)."""

    def state_dict(self):
        return {"class": type(self).__name__, "base_lr": self.base_lr, "last_epoch": self.last_epoch,
                "hyperparameters": {name: getattr(self, name) for name in self._hyperparameters}}

    def load_state_dict(self, state):
        """Restore a ``state_dict()``; a refused state (see ``check_state_dict``) changes nothing."""
        self.check_state_dict(state)
        self.configure(**state["hyperparameters"])
        self.base_lr = float(state["base_lr"])
        self.last_epoch = state["last_epoch"]
        self.optimizer.lr = self.lr_at(self.last_epoch)

    def check_state_dict(self, state):
        """Check a ``state_dict()`` for this schedule without changing it or its optimizer."""
        name = type(self).__name__
        check_state(name, state, ("hyperparameters", "base_lr", "last_epoch"))
        try:
            copy.copy(self).configure(**state["hyperparameters"])
        except TypeError as error:
            raise TypeError(f"{name}.load_state_dict: hyperparameters {sorted(state['hyperparameters'])} "
                            f"do not fit {name} ({error})") from None
        check_number(name, state["base_lr"], "base_lr", low=0)
        check_int(f"{name}.load_state_dict", state["last_epoch"], "last_epoch", low=0)


class StepLR(LRScheduler):
    """``lr = base_lr * gamma ** (epoch // step_size)``, as ``torch.optim.lr_scheduler.StepLR``."""

    _hyperparameters = ("step_size", "gamma")

    def __init__(self, optimizer, step_size, gamma=0.1):
        super().__init__(optimizer)
        self.configure(step_size, gamma)

    def configure(self, step_size, gamma=0.1):
        self.step_size = check_positive_int("StepLR", step_size, "step_size")
        self.gamma = check_number("StepLR", gamma, "gamma", low=0)

    def lr_at(self, epoch):
        return self.base_lr * self.gamma ** (epoch // self.step_size)


class CosineAnnealingLR(LRScheduler):
    """``lr = eta_min + (base_lr - eta_min) (1 + cos(pi epoch / T_max)) / 2``.

    As ``torch.optim.lr_scheduler.CosineAnnealingLR`` (its closed form).
    """

    _hyperparameters = ("T_max", "eta_min")

    def __init__(self, optimizer, T_max, eta_min=0.0):
        super().__init__(optimizer)
        self.configure(T_max, eta_min)

    def configure(self, T_max, eta_min=0.0):
        self.T_max = check_positive_int("CosineAnnealingLR", T_max, "T_max")
        self.eta_min = check_number("CosineAnnealingLR", eta_min, "eta_min", low=0)

    def lr_at(self, epoch):
        cosine = float(np.cos(np.pi * epoch / self.T_max))
        return self.eta_min + (self.base_lr - self.eta_min) * (1 + cosine) / 2


def clip_grad_norm(model, max_norm):
    """Scale ``model``'s gradients in place so their global L2 norm is at most ``max_norm``.

    As ``torch.nn.utils.clip_grad_norm_``: ``total = sqrt(sum ||g||^2)``, every
    gradient times ``min(1, max_norm / (total + 1e-6))``. Returns ``total``.
    """
    if not isinstance(model, Module):
        raise TypeError(f"clip_grad_norm: expected a numtorch Module, got {type(model).__name__}")
    max_norm = check_number("clip_grad_norm", max_norm, "max_norm", low=0)
    grads = flatten(model.getGradParameters())
    total = float(np.sqrt(sum(float(np.sum(np.square(g, dtype=np.float64))) for g in grads)))
    coefficient = min(1.0, max_norm / (total + 1e-6))
    if coefficient < 1.0:
        for grad in grads:
            grad *= coefficient
    return total
