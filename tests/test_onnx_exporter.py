"""ONNX export: every row of the module table, checked by onnx.checker and run in ONNX Runtime."""

import copy
from pathlib import Path

import numpy as np
import pytest

import numtorch as nt
from harness import as_float, assert_close
from module_table import MODULES
from numtorch._table import leaves, shape_of
from numtorch.io import architecture

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
nx = pytest.importorskip("numtorch.onnx")

SEEDS = (0, 1)


def session(path):
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def first(data, count):
    """The first ``count`` samples of an array or of every array of a table."""
    return [first(entry, count) for entry in data] if isinstance(data, list) else data[:count]


def sample_shape(data):
    return [sample_shape(entry) for entry in data] if isinstance(data, list) else tuple(data.shape[1:])


def feeds(x):
    arrays = leaves(x)
    if not isinstance(x, list):
        return {"input": arrays[0]}
    return {f"input.{i}": array for i, array in enumerate(arrays)}


def evaluation_output(module, x):
    """numtorch's evaluation-mode forward, on a copy so that the module's mode and state stay as built."""
    return copy.deepcopy(module).evaluate().forward(x)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("case", MODULES, ids=str)
def test_every_row_exports_and_runs_in_onnx_runtime(case, seed, tmp_path):
    rng = np.random.default_rng(seed)
    nt.manual_seed(seed)
    module, x = case.build(rng, 7)
    x = as_float(x)
    path = tmp_path / "model.onnx"
    nx.export(module, path, sample_shape(x))
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto, full_check=True)
    assert proto.opset_import[0].version == 17
    inputs = proto.graph.input
    assert all(value.type.tensor_type.shape.dim[0].dim_param == "N" for value in inputs)
    parameters = sum(p.size for p in nt.module.flatten(module.getParameters()))
    stored = sum(int(np.prod(i.dims)) for i in proto.graph.initializer)
    assert stored >= parameters, "the weights are not all initializers"
    runtime = session(path)
    for batch in (1, 7):
        xb = first(x, batch)
        expected = leaves(evaluation_output(module, xb))
        got = runtime.run(None, feeds(xb))
        assert len(got) == len(expected), f"{case}: {len(got)} outputs for {shape_of(expected)}"
        for ours, theirs in zip(expected, got):
            assert_close(theirs, ours, 1e-5, 1e-5, f"{case} batch {batch}")


def without_identities(spec):
    """The architecture an exported model reads back as: Dropout and Identity (nothing in the graph) left
    out of Sequentials, a branch of nothing an Identity, nested Sequentials spliced, one outer Sequential,
    SyncBatchNormalization a BatchNormalization."""
    def strip(spec):
        if spec["class"] == "Dropout":
            return {"class": "Identity", "args": {}}
        if spec["class"] == "SyncBatchNormalization":  # one process's function: what inference computes
            return {**spec, "class": "BatchNormalization"}
        if "children" not in spec:
            return spec
        children = [strip(child) for child in spec["children"]]
        if spec["class"] == "Sequential":
            spliced = []
            for child in children:
                if child["class"] == "Sequential":
                    spliced += child["children"]
                elif child["class"] != "Identity":
                    spliced.append(child)
            if not spliced:
                return {"class": "Identity", "args": {}}
            return spliced[0] if len(spliced) == 1 else {**spec, "children": spliced}
        return {**spec, "children": children}

    inner = strip(spec)
    children = inner["children"] if inner["class"] == "Sequential" else [inner]
    return {"class": "Sequential", "args": {}, "children": children}


def float32_arguments(spec):
    """Float arguments as ONNX attributes keep them: float32, read back as their shortest decimal."""
    if isinstance(spec, dict):
        return {key: float32_arguments(value) for key, value in spec.items()}
    if isinstance(spec, list):
        return [float32_arguments(value) for value in spec]
    return float(str(np.float32(spec))) if isinstance(spec, float) else spec


@pytest.mark.parametrize("case", MODULES, ids=str)
def test_every_row_reads_back_as_the_same_network(case, tmp_path):
    rng = np.random.default_rng(0)
    nt.manual_seed(0)
    module, x = case.build(rng, 7)
    x = as_float(x)
    if isinstance(x, list):
        pytest.skip("a table input: numtorch.onnx.load reads models of one input")
    path = tmp_path / "model.onnx"
    nx.export(module, path, sample_shape(x))
    loaded, input_shape = nx.load_with_input_shape(path)
    assert input_shape == x.shape[1:]
    assert not loaded.training
    expected = copy.deepcopy(module).evaluate()
    assert architecture(loaded) == float32_arguments(without_identities(architecture(expected)))
    assert_close(loaded.forward(x), expected.forward(x), 1e-6, 1e-6, f"{case} read back")


def test_softplus_keeps_pytorchs_threshold(tmp_path):
    """Above 20 SoftPlus is x itself: the graph says so (Where), so ONNX Runtime agrees exactly there."""
    path = tmp_path / "softplus.onnx"
    nx.export(nt.SoftPlus(), path, (4,))
    x = np.array([[-30, 0, 19.99, 20.5], [25, 100, 1e30, -1e30]], np.float32)
    got = session(path).run(None, {"input": x})[0]
    assert_close(got, nt.SoftPlus().forward(x), 1e-6, 1e-7, "softplus")
    np.testing.assert_array_equal(got[x > 20], x[x > 20])
    ops = [node.op_type for node in onnx.load(str(path)).graph.node]
    assert {"Softplus", "Greater", "Where"} <= set(ops)


def test_avgpool_counts_padding_as_pytorch(tmp_path):
    path = tmp_path / "pool.onnx"
    pool = nt.AvgPool2d(3, 2, 1)
    nx.export(pool, path, (2, 5, 5))
    node = next(n for n in onnx.load(str(path)).graph.node if n.op_type == "AveragePool")
    attributes = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    assert attributes["count_include_pad"] == 1
    x = np.random.default_rng(0).standard_normal((3, 2, 5, 5)).astype(np.float32)
    assert_close(session(path).run(None, {"input": x})[0], pool.forward(x), 1e-6, 1e-6, "avg pool")


def test_export_uses_evaluation_mode_and_leaves_the_model_alone(tmp_path):
    """Dropout is left out, BatchNormalization uses its moving statistics; the model keeps its mode,
    statistics and weights."""
    model = nt.Sequential(nt.Linear(4, 3), nt.BatchNormalization(n_features=3), nt.Dropout(0.5))
    model[1].moving_mean[:] = [1, 2, 3]
    model[1].moving_variance[:] = [4, 5, 6]
    before = [p.copy() for p in nt.module.flatten(model.getParameters() + model.getBuffers())]
    path = tmp_path / "model.onnx"
    nx.export(model, path, (4,))
    assert model.training and all(m.training for m in model.modules)
    after = nt.module.flatten(model.getParameters() + model.getBuffers())
    assert all(np.array_equal(a, b) for a, b in zip(before, after))
    ops = [node.op_type for node in onnx.load(str(path)).graph.node]
    assert "Dropout" not in ops and "BatchNormalization" in ops
    x = np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32)
    assert_close(session(path).run(None, {"input": x})[0], evaluation_output(model, x), 1e-5, 1e-5, "eval")


def test_float64_model_exports_float32(tmp_path):
    model = nt.Sequential(nt.Linear(3, 2)).astype(np.float64)
    path = tmp_path / "model.onnx"
    nx.export(model, path, (3,))
    assert model[0].W.dtype == np.float64
    x = np.ones((2, 3), np.float32)
    assert_close(session(path).run(None, {"input": x})[0], model.forward(x.astype(np.float64)),
                 1e-6, 1e-6, "float64")


class Square(nt.Module):
    def updateOutput(self, input):
        self.output = input * input
        return self.output


def test_layer_without_onnx_form_is_named(tmp_path):
    model = nt.Sequential(nt.Linear(3, 3), nt.ConcatTable(nt.Identity(), Square()), nt.CAddTable())
    with pytest.raises(ValueError, match=r"export: Square at \(1\)\.\(1\) has no ONNX form"):
        nx.export(model, tmp_path / "model.onnx", (3,))
    assert not (tmp_path / "model.onnx").exists()


def test_bad_input_shape_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match=r"input_shape \(4,\) does not fit the model: .*Linear\(3 -> 2\)"):
        nx.export(nt.Sequential(nt.Linear(3, 2)), tmp_path / "model.onnx", (4,))
    with pytest.raises(TypeError, match="export: expected input_shape as the shape of one sample"):
        nx.export(nt.Linear(3, 2), tmp_path / "model.onnx", 3)
    with pytest.raises(TypeError, match="export: expected a numtorch Module"):
        nx.export("model", tmp_path / "model.onnx", (3,))


def test_export_overwrites_atomically(tmp_path):
    path = tmp_path / "model.onnx"
    path.write_bytes(b"old")
    with pytest.raises(ValueError):
        nx.export(nt.Linear(3, 2), path, (4,))
    assert path.read_bytes() == b"old"
    nx.export(nt.Linear(3, 2), path, (3,))
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)


MNIST = Path(__file__).resolve().parent.parent / ".." / "shared" / "data" / "mnist-t10k"


@pytest.mark.skipif(not (MNIST / "t10k-images-idx3-ubyte.gz").exists(), reason="no MNIST in ../shared/data")
def test_mnist_cnn_exported_from_the_cli_predicts_the_same_classes(tmp_path, capsys):
    """The CNN preset trained two epochs on MNIST (t10k: the first 8,000 images train, the last 2,000 test),
    exported by ``numtorch export``: ONNX Runtime predicts numtorch's class for all 2,000 test images."""
    from numtorch import cli, io

    out = tmp_path / "run"
    assert cli.main(["train", "--data", f"mnist:{MNIST}", "--model", "cnn", "--hidden", "64", "--epochs", "2",
                     "--out", str(out), "--no-progress"]) == 0
    assert cli.main(["export", str(out / "model.npz"), str(out / "model.onnx")]) == 0
    assert "ONNX opset 17, input (N, 1, 28, 28)" in capsys.readouterr().out
    model, meta = io.load_with_metadata(out / "model.npz")
    _, (X, y), _ = cli.load_data(f"mnist:{MNIST}")
    X = cli.fit_to(X, meta["input_shape"], "test").astype(np.float32)
    assert len(X) == 2000
    ours = model.evaluate().forward(X)
    theirs = session(out / "model.onnx").run(None, {"input": X})[0]
    assert np.array_equal(ours.argmax(axis=1), theirs.argmax(axis=1))
    assert_close(theirs, ours, 1e-5, 1e-5, "MNIST scores")
    assert np.mean(ours.argmax(axis=1) == y) > 0.9
