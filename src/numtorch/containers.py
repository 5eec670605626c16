"""Containers: modules made of modules."""

from contextlib import contextmanager

import numpy as np

from numtorch._checks import label
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


class Sequential(Module):
    """Applies its children in order: ``output = m[n-1](...m[1](m[0](input)))``.

    Forward keeps every child's input, so backward can feed each child the
    input it saw, in reverse order.
    """

    def __init__(self, *modules):
        super().__init__()
        self.modules = []
        self.inputs = []
        for module in modules:
            self.add(module)

    def add(self, module):
        """Append a child; returns the container so calls can be chained."""
        if not isinstance(module, Module):
            raise TypeError(f"Sequential.add: expected a Module, got {type(module).__name__}")
        self.modules.append(module)
        return self

    def updateOutput(self, input):
        if not self.modules:
            raise ValueError("Sequential: cannot run forward with no modules")
        self.inputs = []
        output = input
        for i, module in enumerate(self.modules):
            self.inputs.append(output)
            try:
                output = module.forward(output)
            except (ValueError, TypeError) as error:
                if type(error) not in (ValueError, TypeError):
                    raise
                # Say where in the network: a child only sees what the children before it made.
                message = f"Sequential: on input {input.shape}, module ({i}) failed: {error}"
                raise type(error)(message) from None
        self.output = output
        return self.output

    def backward(self, input, gradOutput):
        """Backward through every child; with ``needs_input_grad = False`` the first child skips
        its input gradient (nobody reads it) and this returns ``None``."""
        self.check_backward(input, gradOutput)
        first = self.modules[0]

        def step(module, x, grad):
            if module is first and not self.needs_input_grad:
                with input_grad_skipped(module):
                    return module.backward(x, grad)
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
            if i and np.shape(module.gradInput) != module_input.shape:
                raise ValueError(
                    f"Sequential: accGradParameters needs updateGradInput first (module ({i}) "
                    f"{label(module)} has no gradInput for an input of shape {module_input.shape})"
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

    def __repr__(self):
        lines = [f"  ({i}) {module!r}".replace("\n", "\n  ") for i, module in enumerate(self.modules)]
        return "Sequential(\n" + "\n".join(lines) + "\n)"
