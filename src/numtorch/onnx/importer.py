"""An ONNX model read into numtorch modules: ``load`` and ``load_with_input_shape``.

The file is parsed and checked (``onnx.checker``; self-contained files of one
input only), then read node by node in its topological order: each node
becomes a module, a constant, a shape vector or a condition
(``numtorch.onnx.reader``, ``numtorch.onnx.operators``). Each module runs once
on a zero sample as it is made, so its output shape is known and a node that
does not fit is named at once. ``series_parallel.nest`` then turns the graph
of modules into containers.

Anything numtorch cannot compute exactly (an operator, attribute or input) is
a ``ValueError`` naming the file, the node and what is unsupported; nothing is
approximated silently.
"""

import os
from math import prod

import numpy as np
import onnx

from numtorch.onnx.operators import OPERATORS
from numtorch.onnx.reader import (
    PROBE_LIMIT,
    NodeError,
    Reader,
    Tensor,
    external_data_error,
    kind_of,
    opset_of,
    tensor_array,
)
from numtorch.onnx.series_parallel import NotSeriesParallel, nest
from numtorch.random import get_rng_state, set_rng_state


def read_model(path):
    """The ``ModelProto`` at ``path``, checked by ``onnx.checker`` (self-contained files only)."""
    try:
        with open(path, "rb") as file:
            data = file.read()
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such file") from None
    try:
        model = onnx.load_model_from_string(data)
    except Exception as error:  # noqa: BLE001 (protobuf's DecodeError and friends)
        raise ValueError(f"{path}: not a readable ONNX model, truncated or corrupt ({error})") from None
    if not model.HasField("graph"):
        raise ValueError(f"{path}: not an ONNX model (no graph), or a truncated one")
    for tensor in external_tensors(model.graph):
        raise external_data_error(path, tensor)
    opset_of(model, path)
    try:
        onnx.checker.check_model(model)
    except Exception as error:  # noqa: BLE001 (onnx.checker.ValidationError and C++ errors)
        raise ValueError(f"{path}: not a valid ONNX model: {str(error).strip().splitlines()[0]}") from None
    return model


def external_tensors(graph):
    tensors = list(graph.initializer)
    for node in graph.node:
        tensors += [attribute.t for attribute in node.attribute if attribute.HasField("t")]
    return [tensor for tensor in tensors
            if tensor.data_location == onnx.TensorProto.EXTERNAL or tensor.external_data]


def graph_input(path, graph, constants):
    """The one input: ``(name, sample shape, batch size or None)``."""
    inputs = [value for value in graph.input if value.name not in constants]
    if len(inputs) != 1:
        raise ValueError(f"{path}: the graph has {len(inputs)} inputs ({[v.name for v in inputs]}); "
                         "numtorch reads models of one input")
    value = inputs[0]
    kind = value.type.WhichOneof("value")
    if kind != "tensor_type" or value.type.tensor_type.elem_type != onnx.TensorProto.FLOAT:
        raise ValueError(f"{path}: input {value.name!r} must be a float32 tensor")
    dims = value.type.tensor_type.shape.dim
    shape = [d.dim_value if d.HasField("dim_value") else None for d in dims]
    if len(shape) < 2 or any(d is None or d < 1 for d in shape[1:]) or prod(shape[1:]) > PROBE_LIMIT:
        raise ValueError(f"{path}: input {value.name!r} has shape "
                         f"{[d.dim_param or d.dim_value or '?' for d in dims]}; numtorch needs a batch axis "
                         "followed by known sizes, e.g. (N, 1, 28, 28)")
    return value.name, tuple(shape[1:]), shape[0]


def read_graph(path, model):
    """``(model, input_shape)`` for a checked ``ModelProto``."""
    graph = model.graph
    r = Reader(path, model)
    for tensor in graph.initializer:
        r.values[tensor.name] = tensor_array(path, tensor, "initializer")
    if graph.sparse_initializer:
        raise ValueError(f"{path}: sparse initializers are not supported")
    name, input_shape, r.batch = graph_input(path, graph, r.values)
    r.values[name] = Tensor(name, np.zeros((1, *input_shape), np.float32))
    for node in graph.node:
        r.node = node
        if node.domain not in ("", "ai.onnx"):
            r.fail(f"operator of domain {node.domain!r}: numtorch reads standard ONNX operators only")
        convert = OPERATORS.get(node.op_type)
        if convert is None:
            r.fail(f"operator {node.op_type!r} is not supported (numtorch reads "
                   f"{', '.join(sorted(OPERATORS))})")
        for i, extra in enumerate(node.output[1:], start=1):
            if extra and r.uses.get(extra):
                r.fail(f"output {i} ({extra!r}) is read by the graph; numtorch computes only the first")
        try:
            r.values[node.output[0]] = convert(r)
        except NodeError:
            raise
        except (ValueError, TypeError, IndexError, KeyError, ArithmeticError) as error:
            # What NumPy raises for inputs no exporter writes (a ratio of several values, ...).
            raise r.error(f"cannot read its inputs ({type(error).__name__}: {error})") from None
    outputs = []
    for output in graph.output:
        value = r.values[output.name]
        if not isinstance(value, Tensor) or value.held:
            raise ValueError(f"{path}: output {output.name!r} is {kind_of(value)}, not a tensor numtorch "
                             "computes from the input")
        outputs.append(value.key)
    try:
        model = nest(name, outputs[0] if len(outputs) == 1 else outputs, r.producers,
                     lambda key: r.made_by[key])
    except NotSeriesParallel as error:
        raise ValueError(f"{path}: {error}") from None
    return model.evaluate(), input_shape


def load_with_input_shape(path):
    """``(model, input_shape)``: the numtorch model of the ONNX file at ``path`` and the shape of one
    sample (without the batch) its input takes."""
    path = os.fspath(path)
    model = read_model(path)
    state = get_rng_state()
    try:
        return read_graph(path, model)
    except RecursionError:
        raise ValueError(f"{path}: the graph nests branches too deeply to read") from None
    finally:
        set_rng_state(state)


def load(path):
    """The numtorch model of the ONNX file at ``path``, in evaluation mode.

    The graph must be built from the operators numtorch's modules compute
    (see ``numtorch.onnx``); anything else is a ``ValueError`` naming the node.
    """
    return load_with_input_shape(path)[0]
