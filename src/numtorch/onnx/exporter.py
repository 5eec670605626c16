"""A numtorch model written as an ONNX model: ``export``.

The model is walked as a tree: a container passes its input (an array or a
table: a list of value names) to its children as its data flow says, and
each layer adds the ONNX nodes that compute it. The graph computes the
model's evaluation-mode forward in float32, with opset 17 operators:

========================  ====================================================
numtorch                  ONNX
========================  ====================================================
Linear                    Gemm (transB=1)
Conv2d                    Conv
MaxPool2d, AvgPool2d      MaxPool, AveragePool (count_include_pad=1)
GlobalAvgPool2d           GlobalAveragePool, Flatten
Flatten                   Flatten (axis=1)
BatchNormalization        BatchNormalization (the moving statistics)
ChannelwiseScaling        Mul, Add (per channel)
ReLU, LeakyReLU, ELU      Relu, LeakyRelu, Elu
SoftPlus                  Where(x > 20, x, Softplus(x)): PyTorch's threshold
Sigmoid, Tanh             Sigmoid, Tanh
SoftMax, LogSoftMax       Softmax, LogSoftmax (axis=1)
Dropout, Identity         nothing (the identity in evaluation)
ConcatTable, Sequential   the wiring of the graph
ParallelTable             the wiring, one branch per input entry
CAddTable, CMulTable      Add (Sum for more than two), Mul
JoinTable, Concat         Concat (axis=dim)
SelectTable               the wiring
========================  ====================================================
"""

import copy
import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from numtorch._table import leaves, sample_shapes, zero_batch
from numtorch.containers import Concat, ConcatTable, Container, ParallelTable, Sequential, path_name
from numtorch.io.archive import atomic_write
from numtorch.layers import (
    ELU,
    AvgPool2d,
    BatchNormalization,
    CAddTable,
    ChannelwiseScaling,
    CMulTable,
    Conv2d,
    Dropout,
    Flatten,
    GlobalAvgPool2d,
    Identity,
    JoinTable,
    LeakyReLU,
    Linear,
    LogSoftMax,
    MaxPool2d,
    ReLU,
    SelectTable,
    Sigmoid,
    SoftMax,
    SoftPlus,
    Tanh,
)
from numtorch.module import Module

OPSET = 17
IR_VERSION = 8  # the IR version of opset 17 (ONNX 1.12), which every runtime reading opset 17 reads


class Graph:
    """The nodes and initializers written so far; names are unique."""

    def __init__(self):
        self.nodes, self.initializers, self.taken = [], [], set()

    def name(self, base):
        name, i = base, 1
        while name in self.taken:
            i += 1
            name = f"{base}_{i}"
        self.taken.add(name)
        return name

    def constant(self, base, array):
        name = self.name(base)
        self.initializers.append(numpy_helper.from_array(np.asarray(array, np.float32), name))
        return name

    def node(self, op_type, inputs, where, **attributes):
        """Add a node; returns the name of its output."""
        output = self.name(f"{where}/{op_type}")
        self.nodes.append(helper.make_node(op_type, inputs, [output], name=output, **attributes))
        return output


def window_attributes(module):
    return {"kernel_shape": list(module.kernel_size), "strides": list(module.stride),
            "pads": list(module.padding) * 2}


def layer_nodes(graph, module, x, where):
    """The nodes computing layer ``module`` on value ``x``; returns the output value (a name or a list)."""
    if isinstance(module, (Identity, Dropout)):
        return x
    if isinstance(module, SelectTable):
        return x[module.index]
    if isinstance(module, CAddTable):
        return x[0] if len(x) == 1 else graph.node("Add" if len(x) == 2 else "Sum", x, where)
    if isinstance(module, CMulTable):
        output = x[0]
        for entry in x[1:]:
            output = graph.node("Mul", [output, entry], where)
        return output
    if isinstance(module, JoinTable):
        return graph.node("Concat", x, where, axis=module.dim)
    if isinstance(module, Linear):
        inputs = [x, graph.constant(f"{where}.W", module.W)]
        if module.b is not None:
            inputs.append(graph.constant(f"{where}.b", module.b))
        return graph.node("Gemm", inputs, where, transB=1)
    if isinstance(module, Conv2d):
        inputs = [x, graph.constant(f"{where}.W", module.W)]
        if module.b is not None:
            inputs.append(graph.constant(f"{where}.b", module.b))
        return graph.node("Conv", inputs, where, **window_attributes(module))
    if isinstance(module, MaxPool2d):
        return graph.node("MaxPool", [x], where, **window_attributes(module))
    if isinstance(module, AvgPool2d):
        return graph.node("AveragePool", [x], where, count_include_pad=1, **window_attributes(module))
    if isinstance(module, GlobalAvgPool2d):
        return graph.node("Flatten", [graph.node("GlobalAveragePool", [x], where)], where, axis=1)
    if isinstance(module, Flatten):
        return graph.node("Flatten", [x], where, axis=1)
    if isinstance(module, BatchNormalization):
        channels = module.n_features
        inputs = [x, graph.constant(f"{where}.scale", np.ones(channels)),
                  graph.constant(f"{where}.bias", np.zeros(channels)),
                  graph.constant(f"{where}.moving_mean", module.moving_mean),
                  graph.constant(f"{where}.moving_variance", module.moving_variance)]
        return graph.node("BatchNormalization", inputs, where, epsilon=float(module.EPS),
                          momentum=float(module.alpha))
    if isinstance(module, ChannelwiseScaling):
        # Per channel: (C,) on (N, C) input, (C, 1, 1) on (N, C, H, W).
        shape = (module.n,) + (1,) * (module.output.ndim - 2)
        scaled = graph.node("Mul", [x, graph.constant(f"{where}.gamma", module.gamma.reshape(shape))], where)
        return graph.node("Add", [scaled, graph.constant(f"{where}.beta", module.beta.reshape(shape))], where)
    if isinstance(module, SoftPlus):
        # PyTorch's form: x itself above the threshold (ONNX's Softplus has none).
        above = graph.node("Greater", [x, graph.constant(f"{where}.threshold", module.THRESHOLD)], where)
        return graph.node("Where", [above, x, graph.node("Softplus", [x], where)], where)
    simple = {ReLU: ("Relu", {}), Sigmoid: ("Sigmoid", {}), Tanh: ("Tanh", {}),
              SoftMax: ("Softmax", {"axis": 1}), LogSoftMax: ("LogSoftmax", {"axis": 1})}
    if type(module) in simple:
        op_type, attributes = simple[type(module)]
        return graph.node(op_type, [x], where, **attributes)
    if isinstance(module, LeakyReLU):
        return graph.node("LeakyRelu", [x], where, alpha=float(module.slope))
    if isinstance(module, ELU):
        return graph.node("Elu", [x], where, alpha=float(module.alpha))
    raise ValueError(f"export: {type(module).__name__} at {where} has no ONNX form (numtorch exports "
                     "its own layers and containers)")


def module_nodes(graph, module, x, path=()):
    """The nodes computing ``module`` (any module) on ``x``; returns the output value."""
    where = path_name(path) or "model"
    if type(module) is Sequential:
        for i, child in enumerate(module.modules):
            x = module_nodes(graph, child, x, (*path, i))
        return x
    if type(module) is ConcatTable:
        return [module_nodes(graph, child, x, (*path, i)) for i, child in enumerate(module.modules)]
    if type(module) is ParallelTable:
        return [module_nodes(graph, child, entry, (*path, i))
                for i, (child, entry) in enumerate(zip(module.modules, x))]
    if type(module) is Concat:
        branches = [module_nodes(graph, child, x, (*path, i)) for i, child in enumerate(module.modules)]
        return graph.node("Concat", branches, where, axis=module.dim)
    if isinstance(module, Container):
        raise ValueError(f"export: container {type(module).__name__} at {where} has no ONNX form (numtorch "
                         "exports Sequential, ConcatTable, ParallelTable and Concat)")
    return layer_nodes(graph, module, x, where)


def value_infos(names, samples):
    """Graph inputs or outputs: one float32 tensor per array, its batch axis the symbol N (unnamed for
    an output that joins batches, e.g. JoinTable(0), whose batch is a multiple of N)."""
    return [helper.make_tensor_value_info(name, TensorProto.FLOAT,
                                          ["N" if sample.shape[0] == 1 else None, *sample.shape[1:]])
            for name, sample in zip(names, samples)]


def entry_names(prefix, data):
    """``prefix`` for an array; ``prefix.0``, ``prefix.1``, ... for the arrays of a table, depth first."""
    count = len(leaves(data))
    return [prefix] if not isinstance(data, list) else [f"{prefix}.{i}" for i in range(count)]


def build_model(model, input_shape):
    """The ``ModelProto`` of ``model`` for samples of ``input_shape``."""
    if not isinstance(model, Module):
        raise TypeError(f"export: expected a numtorch Module, got {type(model).__name__}")
    shapes = sample_shapes(input_shape, "export")
    # A copy in evaluation mode and float32 runs once on a zero sample: that checks input_shape, creates
    # statistics BatchNormalization makes lazily, and gives each ChannelwiseScaling its input's rank.
    model = copy.deepcopy(model).astype(np.float32).evaluate()
    sample = zero_batch(shapes)
    try:
        output = model.forward(sample)
    except (ValueError, TypeError) as error:
        raise ValueError(f"export: input_shape {input_shape} does not fit the model: {error}") from None
    graph = Graph()
    input_names = entry_names("input", sample)
    graph.taken.update(input_names)
    x = input_names[0] if not isinstance(sample, list) else rebuild(sample, iter(input_names))
    result = leaves(module_nodes(graph, model, x))
    output_names = entry_names("output", output)
    for name, value in zip(output_names, result):
        graph.nodes.append(helper.make_node("Identity", [value], [name], name=f"{name}/Identity"))
    onnx_graph = helper.make_graph(graph.nodes, "numtorch", value_infos(input_names, leaves(sample)),
                                   value_infos(output_names, leaves(output)), graph.initializers)
    proto = helper.make_model(onnx_graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="numtorch", ir_version=IR_VERSION)
    onnx.checker.check_model(proto, full_check=True)
    return proto


def rebuild(table, names):
    """``table``'s structure with its arrays replaced by the next names."""
    return [rebuild(entry, names) if isinstance(entry, list) else next(names) for entry in table]


def export(model, path, input_shape):
    """Write ``model`` to ``path`` as an ONNX model (opset 17) of its evaluation-mode forward.

    ``input_shape``: the shape of one sample, without the batch, e.g.
    ``(1, 28, 28)`` (for a model that takes a table, a list of such shapes).
    The graph's input is ``input`` (float32, batch axis ``N``; a table's
    arrays are ``input.0``, ``input.1``, ... depth first), its output
    ``output`` (likewise ``output.0``, ... for a table); the weights are
    initializers. The file is written whole or not at all. Raises
    ``ValueError`` for a layer with no ONNX form, naming where it is.
    """
    proto = build_model(model, input_shape)
    atomic_write(os.fspath(path), lambda file: file.write(proto.SerializeToString()))
