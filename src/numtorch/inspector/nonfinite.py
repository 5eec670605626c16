"""Where the first NaN or infinity of a training step appeared: which module, and in what.

A step makes its arrays in one order: the forward pass makes the outputs,
first module to last; the backward pass makes the gradients (``gradInput``
and the parameter gradients), last module to first; the update writes the
parameters. A NaN spreads along that order, so the first non-finite array in
it is where the trouble started; everything after it is only its echo.

The loss sits between the two passes: a non-finite loss from finite
outputs is the criterion's doing (a sum of squares that overflowed, the log
of 0).

``first_nonfinite(model, order, loss)`` searches in ``order``, a tuple of
``"output"``, ``"loss"``, ``"gradient"``, ``"parameter"``: ``SAME_STEP`` after
the update (every array is this step's), ``AFTER_FORWARD`` after the next
step's forward pass and loss (the gradients and parameters are still the
previous step's, the outputs and the loss the new one's).
"""

import math
from collections import namedtuple

import numpy as np

from numtorch._table import leaves
from numtorch.containers import Container, path_name, walk
from numtorch.inspector.statistics import parameter_items

SAME_STEP = ("output", "loss", "gradient", "parameter")
AFTER_FORWARD = ("gradient", "parameter", "output", "loss")

Finding = namedtuple("Finding", ["module", "what", "array", "counts", "cause"])
Finding.__doc__ = """The first non-finite value: ``module`` the module's name (``(3) Linear``; ``the
criterion`` for the loss), ``what`` ``"output"``, ``"loss"``, ``"gradient"`` or ``"parameter"``,
``array`` its name (``output``, ``gradInput``, ``gradW``, ``W`` ...), ``counts`` a phrase
(``12 NaN and 3 inf of 6,400 values``), ``cause`` what made it, in words."""


class NonFinite(FloatingPointError):
    """A NaN or infinity appeared in training: ``step``, ``finding`` (a ``Finding``; ``None`` if
    nothing non-finite was found), and a message saying where and what made it."""

    def __init__(self, step, finding, order=SAME_STEP):
        self.step, self.finding = step, finding
        super().__init__(describe(finding, step, order))


def module_name(path, module):
    """``(1).(0).(2) Conv2d``; the model itself is named by its class."""
    return f"{path_name(path)} {type(module).__name__}".strip()


def leaf_modules(model):
    """``(name, module)`` for every module that is not a container, in forward order."""
    return [(module_name(path, module), module) for path, module in walk(model)
            if not isinstance(module, Container)]


def is_finite(array):
    """True if every value is finite. The sum of a finite array is finite unless it overflows,
    so the exact test runs only when the cheap one fails."""
    with np.errstate(over="ignore", invalid="ignore"):
        if math.isfinite(float(np.sum(array))):
            return True
    return bool(np.isfinite(array).all())


def count_text(arrays):
    nan = sum(int(np.count_nonzero(np.isnan(a))) for a in arrays)
    inf = sum(int(np.count_nonzero(np.isinf(a))) for a in arrays)
    size = sum(a.size for a in arrays)
    parts = [f"{nan:,} NaN" if nan else "", f"{inf:,} inf" if inf else ""]
    return f"{' and '.join(part for part in parts if part)} of {size:,} values"


def arrays_of(data):
    return [] if data is None else [a for a in leaves(data) if isinstance(a, np.ndarray)]


def output_finding(name, module, first):
    arrays = arrays_of(module.output)
    if arrays and not all(is_finite(a) for a in arrays):
        cause = ("the data holds it, or the forward pass overflowed here" if first else
                 "the modules before it gave finite outputs: the forward pass overflowed here")
        return Finding(name, "output", "output", count_text(arrays), cause)
    return None


def gradient_finding(name, module, first):
    cause = ("the criterion's gradient holds it, or the backward pass overflowed here" if first else
             "the gradients of the modules after it were finite: the backward pass overflowed here")
    arrays = arrays_of(module.gradInput)
    if arrays and not all(is_finite(a) for a in arrays):
        return Finding(name, "gradient", "gradInput", count_text(arrays), cause)
    for param_name, _, grad in parameter_items(module):
        grad_name = module._gradients[module._parameters.index(param_name)]
        if grad is not None and not is_finite(grad):
            return Finding(name, "gradient", grad_name, count_text([grad]), cause)
    return None


def parameter_finding(name, module, first):
    for param_name, param, _ in parameter_items(module):
        if not is_finite(param):
            return Finding(name, "parameter", param_name, count_text([param]),
                           "its gradient was finite: the update overflowed (learning rate too high?)")
    return None


def first_nonfinite(model, order=SAME_STEP, loss=None):
    """The first non-finite value of ``model`` (and ``loss``, if given) in the order ``order`` says
    they were made, or ``None``."""
    modules = leaf_modules(model)
    searches = {"output": (output_finding, modules), "gradient": (gradient_finding, modules[::-1]),
                "parameter": (parameter_finding, modules)}
    for what in order:
        if what == "loss":
            if loss is not None and not math.isfinite(loss):
                return Finding("the criterion", "loss", "loss", f"{loss}",
                               "the outputs before it were finite: the criterion made it (an overflow, "
                               "or the log of 0)")
            continue
        find, in_order = searches[what]
        for i, (name, module) in enumerate(in_order):
            finding = find(name, module, i == 0)
            if finding is not None:
                return finding
    return None


def parameters_finite(layers):
    """True if every parameter of the modules ``layers`` (``leaf_modules``) is finite: one sum per array."""
    return all(is_finite(param) for _, module in layers for _, param, _ in parameter_items(module))


def describe(finding, step, order=SAME_STEP):
    """A sentence: where the first non-finite value is, when it was made and by what.

    With ``AFTER_FORWARD`` the gradients and parameters searched are those of step ``step - 1``.
    """
    if finding is None:
        return f"step {step}: no NaN or infinity in the outputs, gradients or parameters"
    made = step if order == SAME_STEP or finding.what in ("output", "loss") else step - 1
    if finding.what == "loss":
        return f"the first non-finite value is the loss ({finding.counts}) at step {made}: {finding.cause}"
    when = f"after the update of step {made}" if finding.what == "parameter" else f"at step {made}"
    array = "" if finding.array == finding.what else f" {finding.array}"
    return (f"the first non-finite value is in the {finding.what}{array} of {finding.module} {when} "
            f"({finding.counts}): {finding.cause}")
