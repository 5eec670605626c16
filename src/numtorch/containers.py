"""Containers: modules made of modules, Torch7's ``nn.Container`` family.

``Container`` holds what every container shares: the children (``add``,
indexing, ``len``, iteration), nested ``getParameters`` / ``getGradParameters``
/ ``getBuffers`` (one list per child), ``zeroGradParameters``, ``train`` /
``evaluate``, ``astype``, ``config`` and a numbered tree ``repr``. A subclass
writes only its data flow: ``updateOutput``, ``updateGradInput``,
``accGradParameters``, and ``backward`` (one walk over the children instead of
the two that ``updateGradInput`` then ``accGradParameters`` take).

- ``Sequential``: a chain, ``m[n-1](...m[0](x))``.
- ``ConcatTable``: every branch reads the same input; the output is the table
  (list) of their outputs.
- ``ParallelTable``: branch i reads entry i of an input table.
- ``Concat(dim)``: every branch reads the same input; their outputs are joined
  along ``dim``.

Where branches read the same input, the gradient with respect to it is the
sum of theirs.
"""

from contextlib import contextmanager

from numtorch._checks import check_int, describe_value, label
from numtorch._table import map_table, shape_of
from numtorch.layers.table import join, split
from numtorch.module import Module


@contextmanager
def input_grad_skipped(module):
    """``module.needs_input_grad`` is False inside the block, then what it was."""
    previous = module.needs_input_grad
    module.needs_input_grad = False
    try:
        yield module
    finally:
        module.needs_input_grad = previous


def sum_tables(grads):
    """The entry-by-entry sum of several gradients of one structure (arrays or tables), in new arrays.

    One gradient is returned as it is: it is already its module's own array.
    """
    if len(grads) == 1:
        return grads[0]

    def add(first, *rest):
        total = first + rest[0]
        for array in rest[1:]:
            total += array
        return total

    return map_table(add, *grads)


class Container(Module):
    """Base of every container: children and everything that recurses into them.

    A container of your own subclasses this and writes its data flow
    (``updateOutput``, ``updateGradInput``, ``accGradParameters`` and, usually,
    ``backward``); ``config()`` returns its constructor's arguments other than
    the children, which save/load rebuilds as ``cls(**config())`` followed by
    ``add(child)`` for each child.
    """

    input_kind = "any"

    def __init__(self, *modules):
        super().__init__()
        self.modules = []
        for module in modules:
            self.add(module)

    def add(self, module):
        """Append a child; returns the container so calls can be chained."""
        if not isinstance(module, Module):
            raise TypeError(f"{type(self).__name__}.add: expected a Module, got {type(module).__name__}")
        self.modules.append(module)
        return self

    def _check_not_empty(self):
        if not self.modules:
            raise ValueError(f"{type(self).__name__}: cannot run forward with no modules")

    def _run(self, i, input, call, data):
        """``call(data)`` for child ``i``; its error says where in the network it happened.

        A child only sees what the children before it made, so the message adds
        the container's input and the child's position.
        """
        try:
            return call(data)
        except (ValueError, TypeError) as error:
            if type(error) not in (ValueError, TypeError):
                raise
            message = f"{type(self).__name__}: on input {shape_of(input)}, module ({i}) failed: {error}"
            raise type(error)(message) from None

    def _backward_child(self, module, input, gradOutput):
        """``module.backward`` for a child that reads this container's input: it skips its input
        gradient while this container's ``needs_input_grad`` is False."""
        if self.needs_input_grad:
            return module.backward(input, gradOutput)
        with input_grad_skipped(module):
            return module.backward(input, gradOutput)

    def _check_table(self, data, what):
        """``data`` is a table of one entry per child (direct calls skip ``forward``'s checks)."""
        if not isinstance(data, list) or len(data) != len(self.modules):
            got = f"{len(data)}: {shape_of(data)}" if isinstance(data, list) else describe_value(data)
            raise ValueError(f"{type(self).__name__}: expected {what} as a table of {len(self.modules)} "
                             f"entries (one per module), got {got}")

    def zeroGradParameters(self):
        for module in self.modules:
            module.zeroGradParameters()

    def getParameters(self):
        return [module.getParameters() for module in self.modules]

    def getGradParameters(self):
        return [module.getGradParameters() for module in self.modules]

    def getBuffers(self):
        return [module.getBuffers() for module in self.modules]

    def train(self):
        super().train()
        for module in self.modules:
            module.train()
        return self

    def evaluate(self):
        super().evaluate()
        for module in self.modules:
            module.evaluate()
        return self

    def astype(self, dtype):
        for module in self.modules:
            module.astype(dtype)
        return self

    def __getitem__(self, index):
        return self.modules[index]

    def __len__(self):
        return len(self.modules)

    def __iter__(self):
        return iter(self.modules)

    def title(self):
        """The container without its children: ``Sequential``, ``Concat(dim=1)``."""
        args = ", ".join(f"{key}={value!r}" for key, value in self.config().items())
        return f"{type(self).__name__}({args})" if args else type(self).__name__

    def __repr__(self):
        args = ", ".join(f"{key}={value!r}" for key, value in self.config().items())
        if not self.modules:
            return f"{type(self).__name__}({args})"
        lines = [f"  ({i}) {module!r}".replace("\n", "\n  ") for i, module in enumerate(self.modules)]
        return f"{type(self).__name__}({args}{',' if args else ''}\n" + "\n".join(lines) + "\n)"


class Sequential(Container):
    """Applies its children in order: ``output = m[n-1](...m[1](m[0](input)))``.

    Forward keeps every child's input in ``inputs``, so backward can feed each
    child the input it saw, in reverse order. ``output`` is the last child's.
    """

    def updateOutput(self, input):
        self._check_not_empty()
        self.inputs = []
        output = input
        for i, module in enumerate(self.modules):
            self.inputs.append(output)
            output = self._run(i, input, module.forward, output)
        self.output = output
        return self.output

    def backward(self, input, gradOutput):
        """Backward through every child; with ``needs_input_grad = False`` the first child skips
        its input gradient (nobody reads it) and this returns ``None``."""
        self.check_backward(input, gradOutput)
        first = self.modules[0]

        def step(module, x, grad):
            if module is first:
                return self._backward_child(module, x, grad)
            return module.backward(x, grad)

        self.gradInput = self._reverse_walk(gradOutput, step)
        return self.gradInput

    def updateGradInput(self, input, gradOutput):
        self.gradInput = self._reverse_walk(gradOutput,
                                            lambda module, x, grad: module.updateGradInput(x, grad))
        return self.gradInput

    def accGradParameters(self, input, gradOutput):
        """Accumulate every child's parameter gradients (after ``updateGradInput``, as in Torch7).

        The gradient reaching each child is the ``gradInput`` the child after
        it stored in ``updateGradInput``; without one of the right shape this
        raises instead of using a stale or missing gradient.
        """
        for i, (module, module_input) in enumerate(zip(self.modules, self.inputs)):
            if i and (module.gradInput is None or shape_of(module.gradInput) != shape_of(module_input)):
                raise ValueError(
                    f"Sequential: accGradParameters needs updateGradInput first (module ({i}) "
                    f"{label(module)} has no gradInput for an input of shape {shape_of(module_input)})"
                )

        def step(module, x, grad):
            module.accGradParameters(x, grad)
            return module.gradInput

        self._reverse_walk(gradOutput, step)

    def _reverse_walk(self, gradOutput, step):
        """Feed ``gradOutput`` back through the children, last to first.

        ``step(child, child_input, grad)`` returns the gradient for the child
        before it (its ``gradInput``); the first child's is returned.
        """
        grad = gradOutput
        for module, module_input in zip(reversed(self.modules), reversed(self.inputs)):
            grad = step(module, module_input, grad)
        return grad


class ConcatTable(Container):
    """Every branch reads the same input; the output is the table of the branches' outputs.

    ``output = [m_0(x), m_1(x), ...]``; ``gradInput = sum_i m_i.gradInput(x, g[i])``
    (on table input, entry by entry; a new array, never one of the branches').
    Shape: x (an array or a table) -> a table of ``len(modules)`` entries.
    """

    def updateOutput(self, input):
        self._check_not_empty()
        self.output = [self._run(i, input, module.forward, input) for i, module in enumerate(self.modules)]
        return self.output

    def updateGradInput(self, input, gradOutput):
        self._check_table(gradOutput, "gradOutput")
        self.gradInput = sum_tables([module.updateGradInput(input, grad)
                                     for module, grad in zip(self.modules, gradOutput)])
        return self.gradInput

    def accGradParameters(self, input, gradOutput):
        self._check_table(gradOutput, "gradOutput")
        for module, grad in zip(self.modules, gradOutput):
            module.accGradParameters(input, grad)

    def backward(self, input, gradOutput):
        self.check_backward(input, gradOutput)
        grads = [self._backward_child(module, input, grad) for module, grad in zip(self.modules, gradOutput)]
        self.gradInput = sum_tables(grads) if self.needs_input_grad else None
        return self.gradInput


class ParallelTable(Container):
    """Branch i reads entry i of the input table: ``output = [m_0(x[0]), m_1(x[1]), ...]``.

    ``gradInput[i] = m_i.gradInput(x[i], g[i])``.
    Shape: a table of ``len(modules)`` entries -> a table of ``len(modules)`` entries.
    """

    input_kind = "table"

    def updateOutput(self, input):
        self._check_not_empty()
        self._check_table(input, "input")
        self.output = [self._run(i, input, module.forward, x)
                       for i, (module, x) in enumerate(zip(self.modules, input))]
        return self.output

    def updateGradInput(self, input, gradOutput):
        self._check_table(gradOutput, "gradOutput")
        self.gradInput = [module.updateGradInput(x, grad)
                          for module, x, grad in zip(self.modules, input, gradOutput)]
        return self.gradInput

    def accGradParameters(self, input, gradOutput):
        self._check_table(gradOutput, "gradOutput")
        for module, x, grad in zip(self.modules, input, gradOutput):
            module.accGradParameters(x, grad)

    def backward(self, input, gradOutput):
        self.check_backward(input, gradOutput)
        grads = [self._backward_child(module, x, grad)
                 for module, x, grad in zip(self.modules, input, gradOutput)]
        self.gradInput = grads if self.needs_input_grad else None
        return self.gradInput


class Concat(Container):
    """Every branch reads the same input; their outputs are joined along axis ``dim``.

    ``output = concatenate([m_0(x), m_1(x), ...], axis=dim)``, ``dim`` counted
    as ``np.concatenate`` counts it (0 is the batch; negative from the end).
    Backward splits gradOutput back into each branch's part; ``gradInput`` is the
    sum of the branches' gradInputs. An Inception block is ``Concat(1, ...)`` of
    convolution branches. Shape: x -> the branch outputs joined (they agree off ``dim``).
    """

    def __init__(self, dim, *modules):
        self.dim = check_int("Concat", dim, "dim", low=None)
        super().__init__(*modules)

    def config(self):
        return {"dim": self.dim}

    def updateOutput(self, input):
        self._check_not_empty()
        outputs = [self._run(i, input, module.forward, input) for i, module in enumerate(self.modules)]
        self.output = join(self, outputs, self.dim, "module outputs")
        self._sizes = [output.shape[self.dim] for output in outputs]
        return self.output

    def _grad_parts(self, gradOutput):
        """gradOutput cut back into each branch's part (views)."""
        if shape_of(gradOutput) != shape_of(self.output):
            raise ValueError(f"{label(self)}: expected gradOutput of the output's shape "
                             f"{shape_of(self.output)}, got {shape_of(gradOutput)}")
        return split(gradOutput, self._sizes, self.dim)

    def updateGradInput(self, input, gradOutput):
        self.gradInput = sum_tables([module.updateGradInput(input, grad)
                                     for module, grad in zip(self.modules, self._grad_parts(gradOutput))])
        return self.gradInput

    def accGradParameters(self, input, gradOutput):
        for module, grad in zip(self.modules, self._grad_parts(gradOutput)):
            module.accGradParameters(input, grad)

    def backward(self, input, gradOutput):
        self.check_backward(input, gradOutput)
        grads = [self._backward_child(module, input, grad)
                 for module, grad in zip(self.modules, self._grad_parts(gradOutput))]
        self.gradInput = sum_tables(grads) if self.needs_input_grad else None
        return self.gradInput


def walk(module, path=()):
    """``(path, module)`` for ``module`` and every module inside it, depth first.

    ``path`` is the tuple of child indices from ``module`` down (``()`` for
    ``module`` itself); ``path_name`` writes it as Torch7 numbers children.
    """
    yield path, module
    if isinstance(module, Container):
        for i, child in enumerate(module.modules):
            yield from walk(child, (*path, i))


def path_name(path):
    """``(1).(0).(2)`` for the path ``(1, 0, 2)``."""
    return ".".join(f"({i})" for i in path)
