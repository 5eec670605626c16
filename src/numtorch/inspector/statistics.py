"""What the inspector measures on one module after a training step, from the arrays it keeps.

After ``backward`` every module holds its ``output`` and ``gradInput`` (either
may be a table, a list of arrays, or ``None``: a module that has not run, or a
first layer whose ``needs_input_grad`` is off) and its parameters with their
gradients. Nothing is hooked: these functions read those arrays.

``module_statistics`` returns one module's record, plain floats and lists
(``None`` where a number does not exist or is not finite), so a record goes to
strict JSON as it is:

- ``output``: ``mean``, ``std`` (population), ``min``, ``max`` and the
  ``percentiles`` ``PERCENTILES`` of every value of the output (all entries of
  a table together; above ``PERCENTILE_SAMPLE`` values, of that many drawn at
  fixed random positions); ``zeros``: the fraction of values exactly 0; ``units``:
  the number of units (axis 1 of each entry: a feature of an (N, D) output, a
  channel of an (N, C, H, W) one); ``dead``: the fraction of units that are 0
  on every sample of the batch; ``saturated``: for Tanh and Sigmoid, the
  fraction of values where the curve is flat (``SATURATION``), else ``None``;
  for ReLU, ``dead_units``: the indices of those dead units.
- ``grad_input_norm``: the L2 norm of ``gradInput`` (all entries together).
- ``parameters``: per parameter name (``W``, ``b``, ``gamma`` ...): ``norm``,
  ``grad_norm`` and ``update_ratio`` = |W - W_before| / |W_before|, the size of
  the last step's update relative to the weights (``None`` without the
  weights from before the step, or when they were all 0).
"""

import math

import numpy as np

from numtorch._table import leaves
from numtorch.layers import ReLU, Sigmoid, Tanh

PERCENTILES = (1, 5, 25, 50, 75, 95, 99)
# Percentiles of a larger output are taken on this many of its values, drawn at fixed random
# positions: sorting a CNN layer's 800,000 values took 8.7 ms of a record's 10.8 ms (65,536 draws
# still 0.6 ms), and the quantiles of 8,192 draws are within about 0.006 (in rank) of the exact
# ones, finer than the plot's percentile bands can show.
PERCENTILE_SAMPLE = 2**13

# Where Tanh and Sigmoid are flat: |tanh| > 0.99 (slope 1 - y^2 < 0.02 of its peak 1);
# sigmoid below 0.01 or above 0.99 (slope y (1 - y) < 0.0099, 4% of its peak 0.25).
SATURATION = {"tanh": 0.99, "sigmoid": 0.49}


def activation_kind(module):
    """``relu``, ``tanh``, ``sigmoid`` (subclasses included) or ``None``: which activation rules apply."""
    for cls, kind in ((ReLU, "relu"), (Tanh, "tanh"), (Sigmoid, "sigmoid")):
        if isinstance(module, cls):
            return kind
    return None


def number(value):
    """``value`` as a Python float, or ``None`` if it is not finite (strict JSON has no NaN)."""
    value = float(value)
    return value if math.isfinite(value) else None


def norm(arrays):
    """The L2 norm of all the arrays together, as a float.

    A float32 sum of squares overflows from values of about 1e19; then it is
    summed again in float64, so an exploding gradient reads 1e25, not inf.
    """
    total = 0.0
    for array in arrays:
        flat = array.reshape(-1)
        with np.errstate(over="ignore", invalid="ignore"):
            squares = float(np.dot(flat, flat))
        if not math.isfinite(squares):
            flat = flat.astype(np.float64)
            squares = float(np.dot(flat, flat))
        total += squares
    return math.sqrt(total)


def unit_activity(array):
    """Per unit (axis 1; a per-sample scalar is one unit), whether any sample's value is nonzero."""
    if array.ndim < 2:
        return np.array([np.any(array)])
    axes = (0, *range(2, array.ndim))
    return np.any(array, axis=axes)


def sample(values):
    """``values`` or, above ``PERCENTILE_SAMPLE`` of them, that many at fixed random positions."""
    if values.size <= PERCENTILE_SAMPLE:
        return values
    return values[np.random.default_rng(0).integers(0, values.size, PERCENTILE_SAMPLE)]


def output_statistics(output, kind=None):
    """The ``output`` record (see the module's docstring) of an array or a table; ``None`` for no output."""
    if output is None:
        return None
    arrays = leaves(output)
    if not arrays or any(not isinstance(array, np.ndarray) for array in arrays):
        return None
    values = arrays[0].reshape(-1) if len(arrays) == 1 else np.concatenate([a.reshape(-1) for a in arrays])
    if values.size == 0:
        return None
    finite = bool(np.isfinite(values).all())
    activity = np.concatenate([unit_activity(array) for array in arrays])
    dead = np.flatnonzero(~activity)
    with np.errstate(over="ignore", invalid="ignore"):
        mean, std = values.mean(dtype=np.float64), values.std(dtype=np.float64)
    record = {
        "mean": number(mean),
        "std": number(std),
        "min": number(values.min()),
        "max": number(values.max()),
        "percentiles": ([number(p) for p in np.percentile(sample(values), PERCENTILES)] if finite
                        else [None] * len(PERCENTILES)),
        "zeros": np.count_nonzero(values == 0) / values.size,
        "units": int(activity.size),
        "dead": dead.size / activity.size,
        "saturated": None,
    }
    if kind == "relu":
        record["dead_units"] = dead.tolist()
    elif kind in SATURATION:
        centre = 0.5 if kind == "sigmoid" else 0.0
        record["saturated"] = np.count_nonzero(np.abs(values - centre) > SATURATION[kind]) / values.size
    return record


def parameter_items(module):
    """``(name, parameter, gradient)`` for each parameter a module declares and holds."""
    for name, grad_name in zip(module._parameters, module._gradients):
        param = getattr(module, name, None)
        if param is not None:
            yield name, param, getattr(module, grad_name, None)


def parameter_statistics(module, before=None):
    """``{name: {"norm", "grad_norm", "update_ratio"}}``; ``before``: ``{name: array}`` before the step."""
    statistics = {}
    for name, param, grad in parameter_items(module):
        weight_norm = norm([param])
        ratio = None
        if before is not None and name in before:
            old = before[name]
            old_norm = norm([old])
            if old_norm > 0:
                with np.errstate(over="ignore", invalid="ignore"):
                    ratio = number(norm([param - old]) / old_norm)
        statistics[name] = {"norm": number(weight_norm),
                            "grad_norm": None if grad is None else number(norm([grad])),
                            "update_ratio": ratio}
    return statistics


def module_statistics(module, before=None):
    """One module's record after a step: ``output``, ``grad_input_norm``, ``parameters``."""
    grad_input = module.gradInput
    grad_arrays = [] if grad_input is None else [a for a in leaves(grad_input) if isinstance(a, np.ndarray)]
    return {
        "output": output_statistics(module.output, activation_kind(module)),
        "grad_input_norm": number(norm(grad_arrays)) if grad_arrays else None,
        "parameters": parameter_statistics(module, before),
    }
