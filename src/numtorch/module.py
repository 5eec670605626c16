"""The two base classes every numtorch object derives from: Module and Criterion.

A module owns its parameters by naming convention: a subclass lists the
attribute names of its parameters in ``_parameters`` and of the matching
gradients in ``_gradients`` (and of non-trainable state, such as BatchNorm's
moving statistics, in ``_buffers``). Containers, optimizers, ``astype`` and
``save``/``load`` find everything through those names, so a new layer needs no
registration code.

A module also describes its configuration explicitly: ``config()`` returns the
keyword arguments its constructor needs to rebuild an equivalent module
(``Linear(3, 2).config() == {"n_in": 3, "n_out": 2, "bias": True}``).
``save``/``load``, ONNX export and ``summary`` read that description.
"""

import numpy as np

from numtorch._checks import FLOAT_DTYPES, check_data, check_float_array, label
from numtorch._table import shape_of


class Module:
    """A differentiable function with its own forward and backward pass.

    ``forward(input)`` computes ``output``; ``backward(input, gradOutput)``
    computes ``gradInput`` and ADDS the parameter gradients of this batch into
    the gradient arrays (Torch7 semantics: call ``zeroGradParameters`` first).
    ``updateOutput``, ``updateGradInput`` and ``accGradParameters`` may also be
    called directly, as Torch7 allows (and the course notebook's tests do).

    What flows through a module is an array or, where the module's meaning
    calls for it, a *table*: a Python list of arrays, nested lists allowed
    (Torch7's Lua tables). ``input_kind`` says what a module takes: "array"
    (the default), "table" (CAddTable, JoinTable, ...) or "any" (Identity,
    containers); ``forward`` and ``backward`` check it, entry by entry.

    ``needs_input_grad = False`` on a network's first layer skips computing the
    gradient with respect to the data, which training never uses (PyTorch skips
    it too for inputs that do not require grad; Torch7 users set that layer's
    ``gradInput`` to nil): ``backward`` then only accumulates the parameter
    gradients and returns ``None``. On a container it means the same for the
    container's input: the children that read it skip their input gradient
    during that container's ``backward`` (their own flags are left alone).
    """

    needs_input_grad = True
    input_kind = "array"
    _parameters = ()
    _gradients = ()
    _buffers = ()

    def __init__(self):
        self.output = None
        self.gradInput = None
        self.training = True

    def config(self):
        """The keyword arguments that rebuild an equivalent module: ``type(self)(**self.config())``.

        Override it in a layer whose constructor takes arguments. Values are
        JSON-able (numbers, strings, booleans, None, lists, tuples, dicts) or
        modules, which ``save`` stores as nested architectures with their
        arrays. A value still unresolved (``BatchNormalization``'s
        ``n_features`` before its first forward) is ``None``. A container
        (a module with a ``modules`` list and an ``add`` method) returns only
        its own arguments: it is rebuilt as ``cls(**config)`` followed by
        ``add(child)`` for each child.
        """
        return {}

    @classmethod
    def array_shapes(cls, **config):
        """The shapes of the parameters and buffers ``cls(**config)`` creates, by name, without creating them.

        ``None`` for an array the constructor does not create (no bias;
        statistics made at the first forward). ``load`` compares a file's
        arrays with these before it runs any constructor, so a small file that
        declares a huge layer is refused before anything is allocated. A layer
        with parameters or buffers overrides it, checking the arguments that
        decide the shapes as its constructor does. This default knows a module
        without any (``{}``); for any other it returns ``None`` (unknown), and
        ``load`` checks such a module's arrays only after building it.
        """
        if cls._parameters or cls._buffers:
            return None
        return {}

    def forward(self, input):
        """Compute, store and return ``output`` for ``input``."""
        check_data(self, input, "input", self.input_kind)
        self.updateOutput(input)
        # What backward checks its input against, valid while ``output`` is this forward's.
        self._forward_record = (shape_of(input), self.output)
        return self.output

    def backward(self, input, gradOutput):
        """Compute ``gradInput`` and accumulate parameter gradients; return ``gradInput``."""
        self.check_backward(input, gradOutput)
        if self.needs_input_grad:
            self.updateGradInput(input, gradOutput)
        else:
            self.gradInput = None
        self.accGradParameters(input, gradOutput)
        return self.gradInput

    def check_backward(self, input, gradOutput):
        """``backward`` comes after a forward (or a direct ``updateOutput``), with a gradOutput of the
        output's shape and, after ``forward``, an input of the forward input's shape (tables: entry by
        entry)."""
        if self.output is None:
            raise ValueError(f"{label(self)}: backward called before forward")
        check_data(self, input, "input", self.input_kind)
        check_data(self, gradOutput, "gradOutput", "any")
        shape = shape_of(input)
        input_shape, output = getattr(self, "_forward_record", (None, None))
        if output is self.output and shape != input_shape:
            raise ValueError(
                f"{label(self)}: expected backward's input of the forward input's shape "
                f"{input_shape}, got {shape}"
            )
        if shape_of(gradOutput) != shape_of(self.output):
            raise ValueError(
                f"{label(self)}: expected gradOutput of the output's shape {shape_of(self.output)}, "
                f"got {shape_of(gradOutput)}"
            )

    def updateOutput(self, input):
        """Override: compute ``self.output`` from ``input`` and return it."""
        raise NotImplementedError(f"{type(self).__name__} does not implement updateOutput")

    def updateGradInput(self, input, gradOutput):
        """Override: compute ``self.gradInput`` (the input's shape) and return it."""
        raise NotImplementedError(f"{type(self).__name__} does not implement updateGradInput")

    def accGradParameters(self, input, gradOutput):
        """Override where there are parameters: add this batch's gradients in place."""

    def zeroGradParameters(self):
        for grad in self.getGradParameters():
            grad.fill(0)

    def getParameters(self):
        """The parameter arrays (the same objects on every call)."""
        return [getattr(self, name) for name in self._parameters if getattr(self, name) is not None]

    def getGradParameters(self):
        """The gradient arrays, in the order of ``getParameters()``."""
        return [getattr(self, name) for name in self._gradients if getattr(self, name) is not None]

    def getBuffers(self):
        """Non-trainable state saved with the model (e.g. moving statistics)."""
        return [getattr(self, name) for name in self._buffers]

    def train(self):
        """Training mode: Dropout drops, BatchNorm uses batch statistics."""
        self.training = True
        return self

    def evaluate(self):
        """Evaluation mode: Dropout is the identity, BatchNorm uses moving statistics."""
        self.training = False
        return self

    def astype(self, dtype):
        """Convert parameters, gradients and buffers to ``dtype``; return the module.

        The arrays are replaced, so an optimizer built before the conversion
        must be built again.
        """
        dtype = np.dtype(dtype)
        if dtype not in FLOAT_DTYPES:
            raise TypeError(f"{label(self)}: astype expects float32 or float64, got {dtype}")
        for name in (*self._parameters, *self._gradients, *self._buffers):
            value = getattr(self, name)
            if value is not None:
                setattr(self, name, value.astype(dtype))
        return self

    def __repr__(self):
        return type(self).__name__


class Criterion:
    """A loss: ``forward(input, target)`` returns a float, ``backward`` its gradient.

    Criterions are the only place that divides by the batch size.
    """

    def __init__(self):
        self.output = None
        self.gradInput = None

    def forward(self, input, target):
        """Compute, store and return the loss (a Python float)."""
        check_float_array(self, input, "input")
        self.output = float(self.updateOutput(input, target))
        return self.output

    def backward(self, input, target):
        """Compute, store and return the gradient of the loss with respect to ``input``."""
        check_float_array(self, input, "input")
        return self.updateGradInput(input, target)

    def updateOutput(self, input, target):
        raise NotImplementedError(f"{type(self).__name__} does not implement updateOutput")

    def updateGradInput(self, input, target):
        raise NotImplementedError(f"{type(self).__name__} does not implement updateGradInput")

    def __repr__(self):
        return type(self).__name__


def matching(param, dtype):
    """``param`` in the input's dtype (a copy only when they differ): a module computes in the dtype
    of its input, whatever its parameters' dtype."""
    return param if param is None or param.dtype == dtype else param.astype(dtype)


def flatten(nested):
    """Flatten the nested lists a container's ``getParameters()`` returns into one list."""
    flat = []
    for item in nested:
        if isinstance(item, (list, tuple)):
            flat.extend(flatten(item))
        else:
            flat.append(item)
    return flat
