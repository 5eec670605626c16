"""Finite-difference gradient checks (the Torch7 ``nn.Jacobian`` idea).

Any module or criterion (tables in and out included) goes through in one line::

    assert numtorch.gradcheck(MyLayer(5), np.random.randn(3, 5)) <= 1e-6

The check runs on a float64 copy of the module (the original is not
touched). For a module it projects the output on a fixed random direction
``R`` and compares the analytic gradient of ``sum(output * R)`` — with respect
to the input and to every parameter — with central differences. Randomness
inside forward (Dropout masks) is replayed identically for every evaluation.
"""

import copy

import numpy as np

from numtorch._checks import check_data, check_float_array, check_int, check_number, label
from numtorch._table import leaves, map_table
from numtorch.module import Criterion, Module, flatten
from numtorch.random import get_rng_state, set_rng_state


def _numeric_gradient(f, x, eps):
    """Central differences of scalar ``f()`` with respect to every element of ``x``, in place."""
    grad = np.zeros_like(x)
    flat, flat_grad = x.reshape(-1), grad.reshape(-1)
    for i in range(flat.size):
        original = flat[i]
        flat[i] = original + eps
        plus = f()
        flat[i] = original - eps
        minus = f()
        flat[i] = original
        flat_grad[i] = (plus - minus) / (2 * eps)
    return grad


def gradcheck(module, input, target=None, eps=1e-6, seed=0):
    """Worst absolute difference between analytic and finite-difference gradients.

    ``module``: a Module (input and every parameter gradient are checked) or a
    Criterion (pass ``target``; the input gradient is checked). ``input`` is
    converted to float64; for a module it may be a table (a list of arrays,
    nested lists allowed), and so may its output. Returns a float; below about
    1e-6 means correct.
    """
    if not isinstance(module, (Module, Criterion)):
        raise TypeError(f"gradcheck: expected a Module or Criterion, got {type(module).__name__}")
    who = f"gradcheck({label(module)})"
    if isinstance(module, Criterion):
        check_float_array(who, input, "input")
    else:
        check_data(who, input, "input", "any")
    if isinstance(module, Criterion) and target is None:
        raise ValueError(f"gradcheck: {label(module)} is a criterion and needs a target "
                         "(expected a target array, got None)")
    eps = check_number("gradcheck", eps, "eps", low=0, low_open=True)
    seed = check_int("gradcheck", seed, "seed", low=0)
    x = map_table(lambda array: np.array(array, dtype=np.float64), input)
    if isinstance(module, Criterion):
        criterion = copy.deepcopy(module)
        analytic = criterion.backward(x, target).copy()
        numeric = _numeric_gradient(lambda: criterion.forward(x, target), x, eps)
        return float(np.max(np.abs(analytic - numeric)))

    module = copy.deepcopy(module).astype(np.float64)
    rng_state = get_rng_state()

    def run():
        set_rng_state(rng_state)
        return module.forward(x)

    rng = np.random.default_rng(seed)
    direction = map_table(lambda output: rng.standard_normal(output.shape), run())

    def objective():
        return float(sum(np.sum(output * d) for output, d in zip(leaves(run()), leaves(direction))))

    module.zeroGradParameters()
    run()
    analytic_input = [g.copy() for g in leaves(module.backward(x, direction))]
    analytic_params = [g.copy() for g in flatten(module.getGradParameters())]
    errors = [np.max(np.abs(analytic - _numeric_gradient(objective, array, eps)), initial=0.0)
              for array, analytic in zip(leaves(x), analytic_input)]
    for param, analytic in zip(flatten(module.getParameters()), analytic_params):
        errors.append(np.max(np.abs(analytic - _numeric_gradient(objective, param, eps)), initial=0.0))
    set_rng_state(rng_state)
    return float(max(errors))
