"""The state of reading an ONNX graph: the kinds of values, and the ``Reader`` the operators work with.

A value of the graph is one of four things:

- a ``Tensor``: what a numtorch module computes (or the graph's input);
- a constant, a NumPy array (initializers, ``Constant``, ``Identity`` of a constant);
- a shape vector, a NumPy object array where the batch size is the symbol
  ``BATCH`` (``Shape``, ``Gather``, ``Unsqueeze``, ``Concat``, ``Slice``, ...:
  the arithmetic exporters write to compute a flatten's target shape);
- a ``Condition``, ``x > threshold``, read only by Softplus's threshold ``Where``.
"""

import numpy as np
import onnx
from onnx import numpy_helper

OPSETS = range(13, 26)  # the default-domain opsets whose semantics of the operators numtorch reads
PROBE_LIMIT = 2**26  # values one sample may need in one module (256 MiB of float32): a hostile file's bound


class Batch:
    """The batch size inside a shape computation: ``Shape(x)[0]``."""

    def __repr__(self):
        return "N"


BATCH = Batch()


class Tensor:
    """A value numtorch computes: ``key`` names it in the module graph, ``sample`` is its value on a zero
    sample (batch 1, for shapes); ``shape`` is its ONNX shape without the batch.

    The two shapes differ only for ``GlobalAveragePool``'s (N, C, 1, 1), held as (N, C) until a flatten.
    """

    def __init__(self, key, sample, shape=None):
        self.key, self.sample = key, sample
        self.shape = tuple(sample.shape[1:]) if shape is None else tuple(shape)

    @property
    def held(self):
        return self.shape != self.sample.shape[1:]


class Condition:
    """``x > threshold``: only ever read as the condition of Softplus's threshold ``Where``."""

    def __init__(self, tensor, threshold):
        self.tensor, self.threshold = tensor, threshold


class NodeError(ValueError):
    """A node numtorch cannot read; the message names the file and the node."""


def describe_shape(shape):
    return "(N, " + ", ".join(str(d) for d in shape) + ")" if shape else "(N,)"


class Reader:
    """The state of one import: the values read so far and the modules made."""

    def __init__(self, path, model):
        self.path = path
        self.values = {}
        self.producers = {}  # module graph: key -> (module, [input keys])
        self.made_by = {}  # key -> the node that made it, for messages
        self.uses = {}
        graph = model.graph
        for node in graph.node:
            for name in node.input:
                self.uses[name] = self.uses.get(name, 0) + 1
        for output in graph.output:
            self.uses[output.name] = self.uses.get(output.name, 0) + 1
        self.node = None
        self.batch = None  # the input's batch size where the graph fixes it

    # messages

    def where(self, node=None):
        node = self.node if node is None else node
        name = node.name or (node.output[0] if node.output else "?")
        return f"node {name!r} ({node.op_type})"

    def error(self, message):
        return NodeError(f"{self.path}: {self.where()}: {message}")

    def fail(self, message):
        raise self.error(message)

    # reading inputs

    def input_value(self, i, optional=False):
        node = self.node
        if i >= len(node.input) or not node.input[i]:
            if optional:
                return None
            self.fail(f"input {i} is missing")
        return self.values[node.input[i]]

    def tensor(self, i=0, raw=False):
        """Input ``i``, a tensor numtorch computes (``raw``: also one held at another shape)."""
        value = self.input_value(i)
        if not isinstance(value, Tensor):
            self.fail(f"input {i} ({self.node.input[i]!r}) must be a computed tensor, got "
                      f"{kind_of(value)}")
        if value.held and not raw:
            self.fail(f"input {i} ({self.node.input[i]!r}) is a global average pool's "
                      f"{describe_shape(value.shape)} output, which numtorch reads only flattened "
                      "(Flatten, or Reshape to (N, -1))")
        return value

    def constant(self, i, optional=False):
        """Input ``i`` as a NumPy array: it must be a constant (an initializer or a Constant)."""
        value = self.input_value(i, optional)
        if value is None:
            return None
        if not isinstance(value, np.ndarray) or value.dtype == object:
            self.fail(f"input {i} ({self.node.input[i]!r}) must be a constant (numtorch reads it as "
                      f"weights or settings), got {kind_of(value)}")
        return value

    def floats(self, i, shape=None, optional=False):
        array = self.constant(i, optional)
        if array is None:
            return None
        if array.dtype.kind != "f":
            self.fail(f"input {i} ({self.node.input[i]!r}) must hold floats, got {array.dtype}")
        if shape is not None and array.shape != tuple(shape):
            self.fail(f"input {i} ({self.node.input[i]!r}) must have shape {tuple(shape)}, got {array.shape}")
        return array.astype(np.float32)

    def attributes(self, **defaults):
        """The node's attributes, ``defaults`` filled in; any other attribute is unsupported."""
        found = {}
        for attribute in self.node.attribute:
            if attribute.name not in defaults:
                self.fail(f"attribute {attribute.name!r} is not supported")
            value = onnx.helper.get_attribute_value(attribute)
            if isinstance(value, bytes):
                value = value.decode()
            elif isinstance(value, float):
                # ONNX stores float32: its shortest decimal reads back 0.1 as 0.1, not 0.10000000149.
                value = float(str(np.float32(value)))
            found[attribute.name] = value
        return {**defaults, **found}

    # making modules

    def make(self, module, inputs, key=None, shape=None):
        """Record ``module`` reading the tensors ``inputs``; returns its output ``Tensor``.

        The module runs on the inputs' samples (evaluation mode), which checks
        that it fits and gives its output's shape.
        """
        key = self.node.output[0] if key is None else key
        module.evaluate()
        sample = [t.sample for t in inputs] if module.input_kind == "table" else inputs[0].sample
        try:
            output = module.forward(sample)
        except (ValueError, TypeError) as error:
            self.fail(f"does not fit its input {[describe_shape(t.shape) for t in inputs]}: {error}")
        self.producers[key] = (module, [tensor.key for tensor in inputs])
        self.made_by[key] = self.where()
        return Tensor(key, output, shape)

    def producer(self, tensor):
        """The module that made ``tensor`` where this node is its only reader (so it may be changed)."""
        node = self.node
        name = next((name for name in node.input if self.values.get(name) is tensor), None)
        if name != tensor.key or self.uses.get(name) != 1 or tensor.key not in self.producers:
            return None
        return self.producers[tensor.key][0]


def kind_of(value):
    if isinstance(value, Tensor):
        return f"a computed tensor {describe_shape(value.shape)}"
    if isinstance(value, Condition):
        return "a comparison"
    if isinstance(value, np.ndarray) and value.dtype == object:
        return f"a shape computed from the input ({list(value.ravel())})"
    return f"a constant of shape {value.shape}"


def opset_of(model, path):
    versions = {entry.domain: entry.version for entry in model.opset_import}
    version = versions.get("", versions.get("ai.onnx"))
    if version is None:
        raise ValueError(f"{path}: the model imports no version of the standard ONNX operators")
    if version not in OPSETS:
        raise ValueError(f"{path}: opset {version}; numtorch reads opsets {OPSETS[0]} to {OPSETS[-1]}")
    return version


def tensor_array(path, tensor, what):
    """An ONNX TensorProto as a NumPy array; external or malformed data is a ValueError."""
    if tensor.data_location == onnx.TensorProto.EXTERNAL or tensor.external_data:
        raise external_data_error(path, tensor)
    try:
        return numpy_helper.to_array(tensor)
    except Exception as error:  # noqa: BLE001 (onnx raises many kinds for malformed tensors)
        raise ValueError(f"{path}: {what} ({tensor.name!r}) is malformed: {error}") from None


def external_data_error(path, tensor):
    return ValueError(f"{path}: tensor {tensor.name!r} refers to external data, which numtorch does not "
                      "read: save the model as one self-contained file (torch.onnx.export(..., "
                      "external_data=False); or onnx.save(onnx.load(path), new_path) where you trust the "
                      "file and its data)")
