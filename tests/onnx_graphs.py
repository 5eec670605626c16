"""Small ONNX graphs written by hand for the import tests (the module is skipped without onnx)."""

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")


def node(op_type, inputs, outputs, name=None, domain=None, **attributes):
    return onnx.helper.make_node(op_type, inputs, outputs, name=name or outputs[0], domain=domain,
                                 **attributes)


def initializer(name, array):
    return onnx.numpy_helper.from_array(np.asarray(array), name)


def value(name, shape):
    """A float32 graph input or output; ``shape`` None for an unknown one, a size None for an unknown size."""
    return onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, shape)


def graph_file(folder, nodes, input, outputs, initializers, opset=17, name="model.onnx"):
    """Write a model of ``nodes`` to ``folder/name`` unchecked (the tests feed broken ones too)."""
    graph = onnx.helper.make_graph(nodes, "test", [value(*input)], [value(*output) for output in outputs],
                                   initializers)
    domains = {n.domain for n in nodes} - {""}
    opsets = [onnx.helper.make_opsetid("", opset)] + [onnx.helper.make_opsetid(d, 1) for d in sorted(domains)]
    model = onnx.helper.make_model(graph, opset_imports=opsets, ir_version=8)
    path = folder / name
    path.write_bytes(model.SerializeToString())
    return path
