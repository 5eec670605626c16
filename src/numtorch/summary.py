"""``summary``: a model as a table of its modules, output shapes and parameter counts.

One row per module of any nesting of containers, indented by depth and
numbered as ``repr`` numbers children. The output shapes come from one forward
pass on zeros in evaluation mode, read from every module's ``output`` after it
(each module keeps its last output, as in Torch7), so branching models need no
special case.
"""

import numpy as np

from numtorch._checks import check_positive_int
from numtorch._table import shape_of
from numtorch.containers import Container, walk
from numtorch.module import Module, flatten


def describe_shape(shape):
    """``(N, 16, 28, 28)`` for an output shape (the batch written N); tables as lists."""
    if isinstance(shape, list):
        return "[" + ", ".join(describe_shape(entry) for entry in shape) + "]"
    return "(" + ", ".join(["N", *map(str, shape[1:])]) + ")"


def summary_rows(model, input_shape=None):
    """``(name, output shape text, parameter count or None)`` per module, depth first.

    ``name`` is indented two spaces a level and starts with the child's number;
    a container's row has its class and arguments (``Concat(dim=1)``) and no
    count (its children have them). Without ``input_shape`` the output column
    is empty. The model's modes are restored afterwards.
    """
    if not isinstance(model, Module):
        raise TypeError(f"summary: expected a numtorch Module, got {type(model).__name__}")
    modules = list(walk(model))
    if input_shape is not None:
        if not isinstance(input_shape, (tuple, list)):
            raise TypeError(
                f"summary: expected input_shape as a tuple of ints, got {type(input_shape).__name__}")
        input_shape = tuple(check_positive_int("summary", size, "every input_shape size")
                            for size in input_shape)
        parameters = flatten(model.getParameters())
        dtype = parameters[0].dtype if parameters else np.float32
        modes = [module.training for _, module in modules]
        model.evaluate()
        try:
            model.forward(np.zeros((1, *input_shape), dtype))
        finally:
            for (_, module), training in zip(modules, modes):
                module.training = training
    rows = []
    for path, module in modules:
        number = f"({path[-1]}) " if path else ""
        if isinstance(module, Container):
            name, count = module.title(), None
        else:
            name, count = repr(module), sum(p.size for p in module.getParameters())
        output = describe_shape(shape_of(module.output)) if input_shape is not None else ""
        rows.append(("  " * len(path) + number + name, output, count))
    return rows


def summary(model, input_shape=None):
    """The text of ``summary_rows``: a header, a row per module, and the total parameter count.

    ``input_shape`` is the shape of one sample, e.g. ``(1, 28, 28)``.
    """
    rows = summary_rows(model, input_shape)
    name_width = max(len("layer"), *(len(name) for name, _, _ in rows))
    output_width = max(len("output"), *(len(output) for _, output, _ in rows))
    lines = [f"{'layer':<{name_width}}  {'output':<{output_width}}  {'parameters':>10}"]
    for name, output, count in rows:
        count_text = "" if count is None else f"{count:,}"
        lines.append(f"{name:<{name_width}}  {output:<{output_width}}  {count_text:>10}".rstrip())
    total = sum(p.size for p in flatten(model.getParameters()))
    lines.append(f"total: {total:,} parameters")
    return "\n".join(lines)
