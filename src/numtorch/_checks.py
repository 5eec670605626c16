"""Input validation shared by every module, criterion and optimizer.

The rules (the README's "Errors" section states them for users):
- arrays that flow through a network are NumPy arrays of float32 or float64;
  anything else (lists, integer or boolean arrays, float16) is a TypeError:
  numtorch never casts silently;
- a batch has at least one sample;
- shapes that disagree are a ValueError naming the module, what it expected
  and what it got.
"""

import numpy as np

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def label(owner):
    """How a module, criterion or function is named in a message: its one-line repr or its name.

    A container's repr spans lines; its messages name its class instead.
    """
    if isinstance(owner, str):
        return owner
    text = repr(owner)
    return type(owner).__name__ if "\n" in text else text


def describe(array):
    """How an offending value reads in an error message."""
    if isinstance(array, np.ndarray):
        return f"array of shape {array.shape} and dtype {array.dtype}"
    return type(array).__name__


def check_float_array(owner, array, what="input", batch=True):
    """A float32/float64 NumPy array; with ``batch``, one with a first axis of at least one sample."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"{label(owner)}: expected {what} as a NumPy float array, got {describe(array)}")
    if array.dtype not in FLOAT_DTYPES:
        raise TypeError(
            f"{label(owner)}: expected {what} of dtype float32 or float64, got {array.dtype} "
            f"(convert it with .astype(np.float32))"
        )
    if batch and (array.ndim == 0 or array.shape[0] == 0):
        raise ValueError(f"{label(owner)}: expected {what} with a non-empty batch, got shape {array.shape}")


def check_data(owner, data, what="input", kind="array"):
    """What flows through a network: with ``kind`` "array" a float array batch
    (``check_float_array``); "table" a non-empty list of arrays or tables (nested lists);
    "any" either. A table is checked entry by entry, each entry named by its index."""
    if kind == "array" or (kind == "any" and not isinstance(data, list)):
        check_float_array(owner, data, what)
        return
    if not isinstance(data, list):
        raise TypeError(
            f"{label(owner)}: expected {what} as a table (a list of arrays), got {describe(data)}")
    if not data:
        raise ValueError(f"{label(owner)}: expected {what} as a non-empty table, got an empty list")
    for i, entry in enumerate(data):
        if not isinstance(entry, (list, np.ndarray)):
            raise TypeError(
                f"{label(owner)}: expected {what} as a NumPy float array or a table (list) of them, got a "
                f"list holding {describe(entry)} at [{i}] (convert numbers with np.asarray(..., "
                "dtype=np.float32))")
        check_data(owner, entry, f"{what}[{i}]", "any")


def check_finite(owner, array, what="target"):
    """No NaN or infinity in ``array``; the message shows the first offending value and where."""
    if np.isfinite(array).all():  # one mask of a byte a value; the position is looked for only on failure
        return
    bad = ~np.isfinite(array)
    if bad.any():
        index = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(
            f"{label(owner)}: expected a finite {what} (no NaN or infinity), got {array[index]} at {index}")


def shape_text(expected):
    return "(" + ", ".join("N" if i == 0 and d is None else "*" if d is None else str(d)
                           for i, d in enumerate(expected)) + ")"


def check_shape(owner, array, expected, what="input"):
    """``expected`` is a tuple of sizes, ``None`` where any size goes."""
    # A plain loop: this runs on every forward, and a generator costs more than the check.
    shape = array.shape
    if len(shape) == len(expected):
        for e, s in zip(expected, shape):
            if e is not None and e != s:
                break
        else:
            return
    raise ValueError(f"{label(owner)}: expected {what} {shape_text(expected)}, got {array.shape}")


def check_min_rank(owner, array, rank, what="input"):
    if array.ndim < rank:
        raise ValueError(
            f"{label(owner)}: expected {what} with at least {rank} dimensions, got {array.shape}"
        )


def describe_value(value):
    """A hyper-parameter as a message shows it: its type and value, e.g. ``float nan``."""
    return f"{type(value).__name__} {value!r}"


def check_int(owner_name, value, what, low=0):
    """An int (not a bool) of at least ``low`` (any int with ``low=None``: an axis or an index)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{owner_name}: expected {what} as an int, got {describe_value(value)}")
    if low is not None and value < low:
        raise ValueError(f"{owner_name}: expected {what} >= {low}, got {value}")
    return int(value)


def check_positive_int(owner_name, value, what):
    return check_int(owner_name, value, what, low=1)


def check_number(owner_name, value, what, low=None, high=None, low_open=False, high_open=False):
    """A real hyper-parameter within [low, high] (open ends where asked)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer,
                                                                     np.floating)):
        raise TypeError(f"{owner_name}: expected {what} as a number, got {describe_value(value)}")
    value = float(value)
    bad = not np.isfinite(value)
    if low is not None:
        bad = bad or value < low or (low_open and value == low)
    if high is not None:
        bad = bad or value > high or (high_open and value == high)
    if bad:
        left = "(" if low_open else "["
        right = ")" if high_open else "]"
        interval = f"{left}{'-inf' if low is None else low}, {'inf' if high is None else high}{right}"
        raise ValueError(f"{owner_name}: expected {what} in {interval}, got {value}")
    return value


def check_class_target(owner, input, target):
    """Validate a classification target against scores/probabilities ``input`` (N, C).

    Returns ``(labels, None)`` for integer labels (N,) or ``(None, weights)`` for
    one-hot or class-distribution targets (N, C).
    """
    who = label(owner)
    check_shape(owner, input, (None, None))
    n, c = input.shape
    if not isinstance(target, np.ndarray):
        raise TypeError(f"{who}: expected target as a NumPy array, got {describe(target)}")
    if target.ndim == 1:
        if target.dtype.kind not in "iu":
            raise TypeError(
                f"{who}: expected integer labels (N,) or one-hot (N, {c}), "
                f"got {describe(target)}"
            )
        if target.shape[0] != n:
            raise ValueError(f"{who}: expected {n} labels (the input's batch), got {target.shape[0]}")
        if n and (target.min() < 0 or target.max() >= c):
            raise ValueError(
                f"{who}: expected labels in [0, {c - 1}], "
                f"got values from {target.min()} to {target.max()}"
            )
        return target, None
    if target.ndim == 2:
        if target.dtype.kind != "f":
            raise TypeError(f"{who}: expected a float one-hot target (N, {c}), got {describe(target)}")
        if target.shape != input.shape:
            raise ValueError(f"{who}: expected one-hot target of shape {input.shape}, got {target.shape}")
        bad = ~(target >= 0) | ~np.isfinite(target)
        if bad.any():
            index = tuple(int(i) for i in np.argwhere(bad)[0])
            raise ValueError(f"{who}: expected a one-hot target of finite non-negative values, "
                             f"got {target[index]} at {index}")
        return None, target
    raise ValueError(
        f"{who}: expected integer labels (N,) or one-hot (N, {c}), got shape {target.shape}"
    )


def check_values_in(owner, array, low, high, what="input", hint=""):
    """Every element finite and within [low, high]; ``hint`` ends the message (what to do instead)."""
    if not np.all(np.isfinite(array)) or array.min() < low or array.max() > high:
        raise ValueError(
            f"{label(owner)}: expected {what} values in [{low:g}, {high:g}], "
            f"got values from {np.min(array):g} to {np.max(array):g}{hint}"
        )


def check_regression_target(owner, input, target, low=None, high=None):
    """A float target of the input's shape (MSE, BCE), within [low, high] where given."""
    who = label(owner)
    check_float_array(owner, target, "target")
    if target.shape != input.shape:
        raise ValueError(f"{who}: expected target of the input's shape {input.shape}, got {target.shape}")
    if low is None:
        check_finite(owner, target, "target")
    else:
        check_values_in(owner, target, low, high, "target")
    return target


def check_pair(owner_name, value, what, minimum):
    """An int or a pair of ints (height, width), each >= ``minimum``; returns a pair."""
    values = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
    if len(values) != 2:
        raise ValueError(f"{owner_name}: expected {what} as an int or a pair of ints, got {value!r}")
    for v in values:
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)):
            raise TypeError(f"{owner_name}: expected {what} as an int or a pair of ints, got {value!r}")
        if v < minimum:
            raise ValueError(f"{owner_name}: expected {what} >= {minimum}, got {value!r}")
    return int(values[0]), int(values[1])


def check_window(owner, input, kernel_size, padding):
    """The (kh, kw) window must fit the spatial size of the padded NCHW ``input``."""
    h, w = input.shape[2] + 2 * padding[0], input.shape[3] + 2 * padding[1]
    if kernel_size[0] > h or kernel_size[1] > w:
        raise ValueError(
            f"{label(owner)}: kernel {kernel_size} larger than the padded input ({h}, {w}) "
            f"of input {input.shape}; expected H >= {kernel_size[0] - 2 * padding[0]} "
            f"and W >= {kernel_size[1] - 2 * padding[1]}"
        )
