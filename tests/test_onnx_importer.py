"""ONNX import: what PyTorch's exporters write, graphs with the patterns exporters use, and files
numtorch must refuse with one clear error."""

import warnings

import numpy as np
import pytest
from onnx_graphs import graph_file, initializer, node

import numtorch as nt
from harness import assert_close, import_torch
from numtorch.containers import walk

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
nx = pytest.importorskip("numtorch.onnx")


def run_onnx_runtime(path, x):
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})


def classes_in(model):
    return [type(module).__name__ for _, module in walk(model)]


# Models PyTorch exports


def torch_models():
    """``{name: (build, sample shape)}``: the issue's four models and one of every other layer."""
    torch = import_torch()
    from torch import nn

    class Residual(nn.Module):
        """A ResNet basic block, written as PyTorch users write it: ``relu(body(x) + x)``."""

        def __init__(self, channels):
            super().__init__()
            self.body = nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1, bias=False),
                                      nn.BatchNorm2d(channels), nn.ReLU(),
                                      nn.Conv2d(channels, channels, 3, padding=1, bias=False),
                                      nn.BatchNorm2d(channels))

        def forward(self, x):
            return torch.relu(self.body(x) + x)

    class BatchNormPool(nn.Module):
        """BatchNorm2d and AvgPool2d (padded, counting the padding), flattened with view(x.size(0), -1)."""

        def __init__(self):
            super().__init__()
            self.features = nn.Sequential(nn.Conv2d(3, 6, 3), nn.BatchNorm2d(6), nn.ReLU(),
                                          nn.AvgPool2d(3, 2, padding=1), nn.BatchNorm2d(6))
            self.head = nn.Linear(6 * 3 * 3, 4)

        def forward(self, x):
            y = self.features(x)
            return self.head(y.view(y.size(0), -1))

    def cnn_preset():
        from numtorch import models
        from numtorch.interop import to_torch

        nt.manual_seed(0)
        model, shape = models.cnn((1, 12, 12), 10, hidden=[16])
        return to_torch(model, shape)

    return {
        "mlp": (lambda: nn.Sequential(nn.Linear(20, 32), nn.ReLU(), nn.Dropout(0.3), nn.Linear(32, 16),
                                      nn.Softplus(), nn.Linear(16, 10), nn.LogSoftmax(dim=1)), (20,)),
        "cnn-preset": (cnn_preset, (1, 12, 12)),
        "batchnorm-avgpool": (BatchNormPool, (3, 7, 7)),
        "residual": (lambda: nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), Residual(4), Residual(4),
                                           nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3)),
                     (2, 6, 5)),
        "activations": (lambda: nn.Sequential(nn.Linear(6, 8), nn.BatchNorm1d(8), nn.LeakyReLU(0.2),
                                              nn.Linear(8, 8), nn.ELU(0.5), nn.Linear(8, 8), nn.Tanh(),
                                              nn.Linear(8, 8, bias=False), nn.Sigmoid(), nn.Linear(8, 5),
                                              nn.Softmax(dim=1)), (6,)),
    }


def randomize_batch_norms(model, torch, seed=0):
    """Running statistics and affine parameters away from their initial values."""
    generator = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
            n = module.num_features
            module.running_mean.copy_(torch.randn(n, generator=generator))
            module.running_var.copy_(torch.rand(n, generator=generator) + 0.5)
            module.weight.data.copy_(torch.rand(n, generator=generator) + 0.5)
            module.bias.data.copy_(torch.randn(n, generator=generator))


def export_torch(model, shape, path, dynamo, opset, torch):
    x = torch.randn(2, *shape)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if dynamo:
            torch.onnx.export(model, (x,), str(path), dynamo=True, opset_version=opset, external_data=False,
                              input_names=["x"], dynamic_shapes=({0: torch.export.Dim("batch")},),
                              verbose=False)
        else:
            torch.onnx.export(model, (x,), str(path), dynamo=False, opset_version=opset, input_names=["x"],
                              output_names=["y"], dynamic_axes={"x": {0: "N"}, "y": {0: "N"}})


@pytest.mark.parametrize("opset", (17, 18))
@pytest.mark.parametrize("dynamo", (False, True), ids=("torchscript", "dynamo"))
@pytest.mark.parametrize("name", ("mlp", "cnn-preset", "batchnorm-avgpool", "residual", "activations"))
def test_pytorch_export_loads_and_agrees(name, dynamo, opset, tmp_path):
    torch = import_torch()
    torch.manual_seed(0)
    build, shape = torch_models()[name]
    model = build()
    randomize_batch_norms(model, torch)
    model.eval()
    path = tmp_path / "model.onnx"
    export_torch(model, shape, path, dynamo, opset, torch)
    loaded, input_shape = nx.load_with_input_shape(path)
    assert input_shape == shape
    x = torch.randn(5, *shape)
    with torch.no_grad():
        expected = model(x).numpy()
    assert_close(loaded.forward(x.numpy()), expected, 1e-5, 1e-5, f"{name} ({dynamo=}, {opset=})")
    if name == "residual":
        classes = classes_in(loaded)
        assert classes.count("ConcatTable") == 2 and classes.count("CAddTable") == 2
        assert classes.count("Identity") == 2, "the skip connections"


def test_residual_graph_becomes_a_residual_block(tmp_path):
    """PyTorch's relu(body(x) + x) reads as numtorch's Sequential(ConcatTable(body, Identity()),
    CAddTable(), ReLU())."""
    torch = import_torch()
    from torch import nn

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 3, 3, padding=1)

        def forward(self, x):
            return torch.relu(torch.tanh(self.conv(x)) + x)

    path = tmp_path / "block.onnx"
    export_torch(Block().eval(), (3, 4, 4), path, False, 17, torch)
    loaded = nx.load(path)
    assert [type(m).__name__ for m in loaded.modules] == ["ConcatTable", "CAddTable", "ReLU"]
    body, skip = loaded[0].modules
    assert [type(m).__name__ for m in body.modules] == ["Conv2d", "Tanh"]
    assert type(skip) is nt.Identity


def test_dynamo_softplus_threshold_becomes_softplus(tmp_path):
    torch = import_torch()
    path = tmp_path / "softplus.onnx"
    export_torch(torch.nn.Sequential(torch.nn.Softplus()).eval(), (6,), path, True, 18, torch)
    ops = [n.op_type for n in onnx.load(str(path)).graph.node]
    assert {"Softplus", "Greater", "Where"} <= set(ops)
    loaded = nx.load(path)
    assert classes_in(loaded) == ["Sequential", "SoftPlus"]
    x = np.array([[-40, -1, 0, 19, 21, 300]], np.float32)
    assert_close(loaded.forward(x), torch.nn.functional.softplus(torch.tensor(x)).numpy(), 1e-6, 1e-7,
                 "softplus")


def test_default_dynamo_export_with_external_data_is_refused_clearly(tmp_path):
    """torch.onnx.export(dynamo=True) keeps large weights in a side file unless external_data=False."""
    torch = import_torch()
    path = tmp_path / "model.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(torch.nn.Sequential(torch.nn.Linear(300, 300)).eval(), (torch.randn(2, 300),),
                          str(path), dynamo=True, verbose=False)
    if not any(p.name != "model.onnx" for p in tmp_path.iterdir()):
        pytest.skip("this PyTorch kept the weights inside the file")
    with pytest.raises(ValueError, match="refers to external data, which numtorch does not read.*"
                                         "external_data=False"):
        nx.load(path)


# Graphs with the patterns exporters write, checked against ONNX Runtime


def rng_floats(rng, *shape):
    return rng.standard_normal(shape).astype(np.float32)


def agree_with_onnx_runtime(path, shape, batch=3, seed=0):
    x = rng_floats(np.random.default_rng(seed), batch, *shape)
    loaded = nx.load(path)
    expected = run_onnx_runtime(path, x)
    got = loaded.forward(x)
    got = got if isinstance(got, list) else [got]
    assert len(got) == len(expected)
    for ours, theirs in zip(got, expected):
        assert_close(ours, theirs, 1e-5, 1e-5, str(path))
    return loaded


def test_matmul_and_bias_add_become_linear(tmp_path):
    rng = np.random.default_rng(0)
    path = graph_file(tmp_path, [node("MatMul", ["x", "W"], ["h"]), node("Add", ["h", "b"], ["y"])],
                      ("x", [None, 4]), [("y", [None, 3])],
                      [initializer("W", rng_floats(rng, 4, 3)), initializer("b", rng_floats(rng, 3))])
    loaded = agree_with_onnx_runtime(path, (4,))
    assert classes_in(loaded) == ["Sequential", "Linear"] and loaded[0].b is not None


def test_gemm_attributes_and_bias_free_conv_with_added_bias(tmp_path):
    rng = np.random.default_rng(1)
    nodes = [node("Conv", ["x", "K"], ["c"], pads=[1, 0, 1, 0], strides=[2, 1]),
             node("Add", ["c", "cb"], ["c2"]), node("Relu", ["c2"], ["r"]),
             node("Flatten", ["r"], ["f"], axis=1),
             node("Gemm", ["f", "W", "b"], ["y"], alpha=0.5, beta=2.0, transB=0)]
    path = graph_file(tmp_path, nodes, ("x", ["batch", 2, 5, 4]), [("y", ["batch", 3])],
                      [initializer("K", rng_floats(rng, 4, 2, 3, 2)),
                       initializer("cb", rng_floats(rng, 4, 1, 1)),
                       initializer("W", rng_floats(rng, 4 * 3 * 3, 3)),
                       initializer("b", rng_floats(rng, 1, 3))])
    loaded = agree_with_onnx_runtime(path, (2, 5, 4))
    assert classes_in(loaded) == ["Sequential", "Conv2d", "ReLU", "Flatten", "Linear"]
    assert loaded[0].b is not None


def test_computed_and_constant_flatten_shapes(tmp_path):
    """Reshape to (N, -1) with the shape computed from the input (Shape, Gather, Unsqueeze, Concat, as
    torch.onnx writes x.view(x.size(0), -1)), and to a constant (-1, size), (0, -1) or (2, -1) for a
    graph whose batch is fixed at 2."""
    computed = [node("Shape", ["x"], ["s"]), node("Gather", ["s", "zero"], ["n"], axis=0),
                node("Unsqueeze", ["n", "axes"], ["n1"]),
                node("Concat", ["n1", "minus_one"], ["target"], axis=0),
                node("Cast", ["target"], ["target64"], to=onnx.TensorProto.INT64),
                node("Reshape", ["x", "target64"], ["y"])]
    constants = [initializer("zero", np.array(0, np.int64)), initializer("axes", np.array([0], np.int64)),
                 initializer("minus_one", np.array([-1], np.int64))]
    path = graph_file(tmp_path, computed, ("x", ["N", 2, 3, 2]), [("y", ["N", 12])], constants)
    assert classes_in(agree_with_onnx_runtime(path, (2, 3, 2))) == ["Sequential", "Flatten"]
    for target, batch in (([-1, 12], "N"), ([0, -1], "N"), ([2, -1], 2), ([2, 12], 2)):
        path = graph_file(tmp_path, [node("Reshape", ["x", "t"], ["y"])], ("x", [batch, 2, 3, 2]),
                          [("y", [batch, 12])], [initializer("t", np.array(target, np.int64))],
                          name=f"reshape{target}.onnx")
        assert classes_in(agree_with_onnx_runtime(path, (2, 3, 2), batch=2)) == ["Sequential", "Flatten"]


def test_global_pools_flattened_three_ways(tmp_path):
    rng = np.random.default_rng(2)
    heads = {
        "gap-flatten": [node("GlobalAveragePool", ["x"], ["p"]), node("Flatten", ["p"], ["f"])],
        "reducemean-squeeze": [node("ReduceMean", ["x"], ["p"], axes=[2, 3], keepdims=1),
                               node("Squeeze", ["p", "sq"], ["f"])],
        "reducemean-no-keepdims": [node("ReduceMean", ["x"], ["f"], axes=[-1, -2], keepdims=0)],
    }
    for name, head in heads.items():
        nodes = [*head, node("Gemm", ["f", "W"], ["y"], transB=1)]
        path = graph_file(tmp_path, nodes, ("x", ["N", 3, 4, 5]), [("y", ["N", 2])],
                          [initializer("W", rng_floats(rng, 2, 3)),
                           initializer("sq", np.array([2, 3], np.int64))],
                          name=f"{name}.onnx")
        loaded = agree_with_onnx_runtime(path, (3, 4, 5))
        assert classes_in(loaded) == ["Sequential", "GlobalAvgPool2d", "Linear"], name
    opset18 = [node("ReduceMean", ["x", "axes"], ["p"], keepdims=1), node("Reshape", ["p", "t"], ["y"])]
    path = graph_file(tmp_path, opset18, ("x", ["N", 3, 4, 5]), [("y", ["N", 3])],
                      [initializer("axes", np.array([2, 3], np.int64)),
                       initializer("t", np.array([-1, 3], np.int64))],
                      opset=18, name="opset18.onnx")
    assert classes_in(agree_with_onnx_runtime(path, (3, 4, 5))) == ["Sequential", "GlobalAvgPool2d"]


def test_batch_normalization_with_scale_and_another_epsilon(tmp_path):
    rng = np.random.default_rng(3)
    values = [initializer(name, array) for name, array in (
        ("scale", rng_floats(rng, 3)), ("bias", rng_floats(rng, 3)), ("mean", rng_floats(rng, 3)),
        ("var", rng.uniform(0.5, 2, 3).astype(np.float32)))]
    path = graph_file(tmp_path, [node("BatchNormalization", ["x", "scale", "bias", "mean", "var"], ["y"],
                                      epsilon=1e-3, momentum=0.8)],
                      ("x", ["N", 3, 2, 2]), [("y", ["N", 3, 2, 2])], values)
    loaded = agree_with_onnx_runtime(path, (3, 2, 2))
    assert classes_in(loaded) == ["Sequential", "BatchNormalization", "ChannelwiseScaling"]
    assert loaded[0].alpha == 0.8 and not loaded.training


def test_branches_sum_product_concat_and_several_outputs(tmp_path):
    """Three branches summed (Sum), a gate (s * sigmoid(s)), an Inception-style Concat, and two graph
    outputs."""
    rng = np.random.default_rng(4)
    nodes = [node("Relu", ["x"], ["a"]), node("Tanh", ["x"], ["b"]), node("Sigmoid", ["x"], ["c"]),
             node("Sum", ["a", "b", "c"], ["s"]), node("Sigmoid", ["s"], ["e"]),
             node("Mul", ["s", "e"], ["m"]),
             node("Conv", ["m", "K1"], ["k1"]), node("Conv", ["m", "K3"], ["k3"], pads=[1, 1, 1, 1]),
             node("MaxPool", ["m"], ["mp"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[1, 1]),
             node("Concat", ["k1", "k3", "mp"], ["cat"], axis=1),
             node("Elu", ["cat"], ["y1"], alpha=0.5), node("LeakyRelu", ["cat"], ["y2"], alpha=0.2)]
    path = graph_file(tmp_path, nodes, ("x", ["N", 2, 4, 4]),
                      [("y1", ["N", 7, 4, 4]), ("y2", ["N", 7, 4, 4])],
                      [initializer("K1", rng_floats(rng, 2, 2, 1, 1)),
                       initializer("K3", rng_floats(rng, 3, 2, 3, 3))])
    loaded = agree_with_onnx_runtime(path, (2, 4, 4))
    top = [type(m).__name__ for m in loaded.modules]
    assert top == ["ConcatTable", "CAddTable", "ConcatTable", "CMulTable", "Concat", "ConcatTable"]
    assert [type(m).__name__ for m in loaded[4].modules] == ["Conv2d", "Conv2d", "MaxPool2d"]


def test_dropout_identity_and_softmax(tmp_path):
    nodes = [node("Identity", ["x"], ["i"]), node("Dropout", ["i", "ratio"], ["d"]),
             node("LogSoftmax", ["d"], ["y"], axis=1)]
    path = graph_file(tmp_path, nodes, ("x", ["N", 5]), [("y", ["N", 5])],
                      [initializer("ratio", np.array(0.25, np.float32))])
    loaded = agree_with_onnx_runtime(path, (5,))
    assert classes_in(loaded) == ["Sequential", "Dropout", "LogSoftMax"] and loaded[0].p == 0.25


def test_load_keeps_numtorchs_random_stream(tmp_path):
    path = tmp_path / "model.onnx"
    nx.export(nt.Sequential(nt.Linear(3, 4), nt.ReLU()), path, (3,))
    nt.manual_seed(5)
    expected = nt.random.generator().random(3)
    nt.manual_seed(5)
    nx.load(path)
    np.testing.assert_array_equal(nt.random.generator().random(3), expected)


# Files numtorch refuses, with one clear error


def refused(path, pattern):
    with pytest.raises(ValueError, match=pattern) as caught:
        nx.load(path)
    message = str(caught.value)
    assert message.startswith(str(path)) and "\n" not in message, message
    return message


LINEAR = [initializer("W", np.ones((2, 4), np.float32))]


def test_unknown_operator(tmp_path):
    path = graph_file(tmp_path, [node("Erf", ["x"], ["e"], name="erf1"), node("Relu", ["e"], ["y"])],
                      ("x", ["N", 4]), [("y", ["N", 4])], [])
    refused(path, r"node 'erf1' \(Erf\): operator 'Erf' is not supported \(numtorch reads Add, ")


def test_reshape_that_is_not_a_flatten(tmp_path):
    path = graph_file(tmp_path, [node("Reshape", ["x", "t"], ["y"], name="r")], ("x", ["N", 2, 6]),
                      [("y", ["N", 3, 4])], [initializer("t", np.array([0, 3, 4], np.int64))])
    refused(path, r"node 'r' \(Reshape\): reshape of \(N, 2, 6\) to \[0, 3, 4\]: numtorch reshapes only to "
                  r"\(N, -1\)")
    path = graph_file(tmp_path, [node("Reshape", ["x", "t"], ["y"], name="r")], ("x", ["N", 2, 6]),
                      [("y", [1, None])], [initializer("t", np.array([1, -1], np.int64))], name="batch.onnx")
    refused(path, r"reshape of \(N, 2, 6\) to \[1, -1\]")


def test_two_inputs(tmp_path):
    graph = onnx.helper.make_graph(
        [node("Add", ["a", "b"], ["y"])], "two",
        [onnx.helper.make_tensor_value_info(n, onnx.TensorProto.FLOAT, ["N", 3]) for n in "ab"],
        [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, ["N", 3])])
    path = tmp_path / "two.onnx"
    onnx.save(onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 17)]), str(path))
    refused(path, r"the graph has 2 inputs \(\['a', 'b'\]\); numtorch reads models of one input")


def test_external_data_is_never_followed(tmp_path):
    (tmp_path / "weights.bin").write_bytes(np.ones(8, np.float32).tobytes())
    path = graph_file(tmp_path, [node("Gemm", ["x", "W"], ["y"], transB=1)], ("x", ["N", 4]),
                      [("y", ["N", 2])], LINEAR)
    model = onnx.load(str(path))
    tensor = model.graph.initializer[0]
    tensor.ClearField("raw_data")
    tensor.ClearField("float_data")
    tensor.data_location = onnx.TensorProto.EXTERNAL
    for key, value in (("location", "../../etc/passwd"), ("offset", "0"), ("length", "32")):
        entry = tensor.external_data.add()
        entry.key, entry.value = key, value
    path.write_bytes(model.SerializeToString())
    refused(path, r"tensor 'W' refers to external data, which numtorch does not read")


def test_truncated_and_garbage_files(tmp_path):
    path = tmp_path / "model.onnx"
    nx.export(nt.Sequential(nt.Linear(30, 20), nt.ReLU(), nt.Linear(20, 3)), path, (30,))
    data = path.read_bytes()
    for cut in (len(data) // 2, len(data) - 5, 3):
        truncated = tmp_path / f"cut{cut}.onnx"
        truncated.write_bytes(data[:cut])
        refused(truncated, "not a readable ONNX model, truncated or corrupt|not an ONNX model|"
                           "not a valid ONNX")
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(bytes(range(256)) * 4)
    refused(garbage, "not a readable ONNX model|not an ONNX model|not a valid ONNX")
    empty = tmp_path / "empty.onnx"
    empty.write_bytes(b"")
    refused(empty, "not an ONNX model")
    with pytest.raises(FileNotFoundError, match="no such file"):
        nx.load(tmp_path / "missing.onnx")


@pytest.mark.parametrize("nodes, initializers, input_shape, pattern", [
    ([node("Conv", ["x", "K"], ["y"], group=2, name="n")],
     [initializer("K", np.ones((2, 1, 1, 1), np.float32))],
     [None, 2, 3, 3], r"node 'n' \(Conv\): group=2: numtorch has no grouped convolution"),
    ([node("Conv", ["x", "K"], ["y"], auto_pad="SAME_UPPER", name="n")],
     [initializer("K", np.ones((2, 2, 2, 2), np.float32))], [None, 2, 3, 3], "auto_pad=SAME_UPPER"),
    ([node("Conv", ["x", "K"], ["y"], pads=[0, 0, 1, 1], name="n")],
     [initializer("K", np.ones((2, 2, 2, 2), np.float32))], [None, 2, 3, 3],
     "pads both sides of an axis alike"),
    ([node("Conv", ["x", "K"], ["y"], pads=[40000, 40000, 40000, 40000], name="n")],
     [initializer("K", np.ones((2, 2, 2, 2), np.float32))], [None, 2, 3, 3], "needs more than"),
    ([node("AveragePool", ["x"], ["y"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], name="n")], [],
     [None, 2, 3, 3], "count_include_pad=0 with padding"),
    ([node("MaxPool", ["x"], ["y"], kernel_shape=[2, 2], ceil_mode=1, name="n")], [], [None, 2, 3, 3],
     "ceil_mode=1"),
    ([node("Relu", ["x"], ["y"], name="n", domain="com.example")], [], [None, 3],
     r"operator of domain 'com.example'"),
    ([node("Softmax", ["x"], ["y"], axis=2, name="n")], [], [None, 3, 4], r"axis=2 on \(N, 3, 4\)"),
    ([node("Add", ["x", "c"], ["y"], name="n")], [initializer("c", np.ones((3, 4), np.float32))],
     [None, 3, 4], r"a constant of shape \(3, 4\) against \(N, 3, 4\): numtorch adds and multiplies "
                   "constants per channel"),
    ([node("Gemm", ["x", "W"], ["y"], transA=1, name="n")], LINEAR, [None, 4], "transA=1"),
    ([node("Gemm", ["x", "W"], ["y"], name="n")], LINEAR, [None, 3],
     r"does not fit its input \['\(N, 3\)'\]"),
    ([node("Relu", ["x"], ["y"], name="n")], [], [None, "H"],
     "numtorch needs a batch axis followed by known"),
    ([node("Greater", ["x", "t"], ["g"]), node("Softplus", ["x"], ["s"]),
      node("Where", ["g", "s", "x"], ["y"], name="n")],
     [initializer("t", np.array(20, np.float32))], [None, 3], "reads Where only as Softplus's threshold"),
    ([node("Greater", ["x", "t"], ["g"]), node("Softplus", ["x"], ["s"]),
      node("Where", ["g", "x", "s"], ["y"], name="n")],
     [initializer("t", np.array(10, np.float32))], [None, 3], "reads Where only as Softplus's threshold"),
    ([node("BatchNormalization", ["x", "o", "z", "z", "o"], ["y", "m", "v"], training_mode=1, name="n")],
     [initializer("o", np.ones(3, np.float32)), initializer("z", np.zeros(3, np.float32))], [None, 3],
     "training_mode=1"),
    ([node("BatchNormalization", ["x", "o", "z", "z", "v"], ["y"], name="n")],
     [initializer("o", np.ones(3, np.float32)), initializer("z", np.zeros(3, np.float32)),
      initializer("v", np.array([1, -1, np.nan], np.float32))], [None, 3],
     "variance \\+ epsilon must be positive"),
    ([node("MaxPool", ["x"], ["y"], kernel_shape=[2, 2], dilations=[2, 2], name="n")], [], [None, 2, 5, 5],
     r"dilations=\[2, 2\]: numtorch has no dilation"),
    ([node("Relu", ["x"], ["y"], name="n", beta=2.0)], [], [None, 3], "Unrecognized attribute: beta"),
    ([node("Relu", ["x"], ["a"]), node("Tanh", ["x"], ["b"]), node("Add", ["a", "b"], ["c"]),
      node("Add", ["c", "a"], ["y"])], [], [None, 3],
     "is read by two branches that join elsewhere: the graph is not series-parallel"),
])
def test_unsupported_graph_is_named(tmp_path, nodes, initializers, input_shape, pattern):
    path = graph_file(tmp_path, nodes, ("x", input_shape), [("y", input_shape)], initializers)
    refused(path, pattern)


def test_old_opset(tmp_path):
    path = graph_file(tmp_path, [node("Relu", ["x"], ["y"])], ("x", ["N", 3]), [("y", ["N", 3])], [],
                      opset=11)
    refused(path, "opset 11; numtorch reads opsets 13 to 25")


def mutations(rng, base, count):
    """``count`` models changed at random: an op type, an attribute value, the order or the source of an
    input, an initializer's size."""
    from numtorch.onnx.operators import OPERATORS

    ops = sorted(OPERATORS)
    for _ in range(count):
        model = onnx.ModelProto()
        model.CopyFrom(base)
        graph = model.graph
        target = graph.node[rng.integers(len(graph.node))]
        change = rng.integers(5)
        if change == 0:
            target.op_type = ops[rng.integers(len(ops))]
        elif change == 1 and target.attribute:
            attribute = target.attribute[rng.integers(len(target.attribute))]
            if attribute.type == onnx.AttributeProto.INTS and len(attribute.ints):
                attribute.ints[rng.integers(len(attribute.ints))] = int(rng.integers(-3, 6))
            elif attribute.type == onnx.AttributeProto.INT:
                attribute.i = int(rng.integers(-3, 4))
            elif attribute.type == onnx.AttributeProto.FLOAT:
                attribute.f = float(rng.normal() * 30)
        elif change == 2 and len(target.input) > 1:
            i, j = rng.integers(len(target.input), size=2)
            target.input[i], target.input[j] = target.input[j], target.input[i]
        elif change == 3 and target.input:
            names = [t.name for t in graph.initializer] + [o for n in graph.node for o in n.output]
            target.input[rng.integers(len(target.input))] = names[rng.integers(len(names))]
        else:
            tensor = graph.initializer[rng.integers(len(graph.initializer))]
            array = onnx.numpy_helper.to_array(tensor).reshape(-1)
            array = array[:max(1, array.size // int(rng.integers(1, 3)))]
            array = array if rng.integers(2) else array[None]
            tensor.CopyFrom(onnx.numpy_helper.from_array(array, tensor.name))
        yield model.SerializeToString()


def test_changed_and_corrupted_files_give_a_value_error_or_a_working_model(tmp_path):
    """Fuzzing: 1,500 files changed in their structure or their bytes load into a model that runs, or
    raise ValueError (never another exception from deep inside)."""
    from numtorch.models import residual_block

    nt.manual_seed(0)
    net = nt.Sequential(nt.Conv2d(1, 4, 3), nt.ReLU(), residual_block(4), nt.AvgPool2d(2, 2, 1), nt.Flatten(),
                        nt.Linear(4 * 4 * 4, 5), nt.SoftPlus(), nt.LogSoftMax())
    base_path = tmp_path / "base.onnx"
    nx.export(net, base_path, (1, 6, 6))
    data = base_path.read_bytes()
    rng = np.random.default_rng(0)
    flipped = []
    for _ in range(500):
        changed = bytearray(data)
        for index in rng.integers(len(changed), size=int(rng.integers(1, 4))):
            changed[index] = int(rng.integers(256))
        flipped.append(bytes(changed))
    outcomes = {"loaded": 0, "refused": 0}
    path = tmp_path / "changed.onnx"
    for content in [*mutations(rng, onnx.load(str(base_path)), 1000), *flipped]:
        path.write_bytes(content)
        try:
            model = nx.load(path)
        except ValueError:
            outcomes["refused"] += 1
            continue
        with np.errstate(all="ignore"):
            model.forward(np.zeros((2, 1, 6, 6), np.float32))
        outcomes["loaded"] += 1
    assert outcomes["loaded"] > 250 and outcomes["refused"] > 750, outcomes
