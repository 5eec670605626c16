"""numtorch.io.model: save/load round trips for every row of the module table, load_weights, errors."""

import json
from pathlib import Path

import numpy as np
import pytest

import numtorch as nt
from harness import as_float, copy_data, random_like, set_mode
from module_table import MODULES
from numtorch import io
from numtorch.module import flatten
from numtorch.random import generator
from user_layers import Scaled


def run(module, x, grad_output, rng_state):
    """Forward and backward from a fixed RNG state; copies of everything that comes out."""
    nt.set_rng_state(rng_state)
    module.zeroGradParameters()
    output = copy_data(module.forward(x))
    grad_input = copy_data(module.backward(x, grad_output))
    return output, grad_input, [g.copy() for g in flatten(module.getGradParameters())]


def module_modes():
    return [pytest.param(case, mode, id=f"{case.name}-{mode}", marks=case.marks)
            for case in MODULES for mode in case.modes]


@pytest.mark.parametrize("case,mode", module_modes())
def test_round_trip_gives_identical_forward_and_backward(tmp_path, case, mode):
    rng = np.random.default_rng(0)
    nt.manual_seed(0)
    module, x = case.build(rng, 4)
    x = as_float(x)
    set_mode(module, "train")
    module.forward(x)  # moves any running statistics away from their initial values
    set_mode(module, mode)
    io.save(module, tmp_path / "m.npz")
    loaded = io.load(tmp_path / "m.npz")
    set_mode(loaded, mode)

    assert type(loaded) is type(module) and repr(loaded) == repr(module)
    for ours, theirs in zip(flatten(module.getParameters()) + flatten(module.getBuffers()),
                            flatten(loaded.getParameters()) + flatten(loaded.getBuffers())):
        assert ours is not theirs and ours.dtype == theirs.dtype
        np.testing.assert_array_equal(ours, theirs)
    state = nt.get_rng_state()
    grad_output = random_like(rng, module.forward(x))
    for a, b in zip(run(module, x, grad_output, state), run(loaded, x, grad_output, state)):
        for ours, theirs in zip(flatten([a]), flatten([b])):
            np.testing.assert_array_equal(ours, theirs)


def model(seed=0):
    nt.manual_seed(seed)
    return nt.Sequential(nt.Linear(6, 5), nt.LeakyReLU(0.2), nt.Sequential(nt.Linear(5, 3), nt.Tanh()))


def test_file_layout_is_json_plus_named_arrays(tmp_path):
    io.save(model(), tmp_path / "m.npz", input_shape=(6,))
    with np.load(tmp_path / "m.npz", allow_pickle=False) as archive:
        assert sorted(archive.files) == ["__numtorch__", "model/0.W", "model/0.b",
                                         "model/2.0.W", "model/2.0.b"]
        meta = json.loads(str(archive["__numtorch__"]))
    assert meta["input_shape"] == [6] and meta["kind"] == "model"
    assert meta["architecture"]["children"][1] == {"class": "LeakyReLU", "args": {"slope": 0.2}}
    assert meta["architecture"]["children"][0]["args"] == {"n_in": 6, "n_out": 5, "bias": True}
    _, meta = io.load_with_metadata(tmp_path / "m.npz")
    assert meta["input_shape"] == [6]


def test_children_added_after_construction_are_saved(tmp_path):
    net = nt.Sequential(nt.Linear(3, 4)).add(nt.ReLU()).add(nt.Linear(4, 2))
    io.save(net, tmp_path / "m.npz")
    loaded = io.load(tmp_path / "m.npz")
    assert len(loaded) == 3
    np.testing.assert_array_equal(loaded[2].W, net[2].W)


def test_float64_model_stays_float64(tmp_path):
    net = model().astype(np.float64)
    io.save(net, tmp_path / "m.npz")
    loaded = io.load(tmp_path / "m.npz")
    assert all(p.dtype == np.float64 for p in flatten(loaded.getParameters() + loaded.getGradParameters()))
    x = np.random.default_rng(0).standard_normal((2, 6))
    np.testing.assert_array_equal(loaded.forward(x), net.forward(x))


def test_load_leaves_the_rng_alone(tmp_path):
    io.save(model(), tmp_path / "m.npz")
    nt.manual_seed(7)
    expected = generator().random()
    nt.manual_seed(7)
    io.load(tmp_path / "m.npz")
    assert generator().random() == expected


def lazy_batch_norm_net():
    nt.manual_seed(0)
    return nt.Sequential(nt.Linear(3, 4), nt.BatchNormalization(0.5), nt.ReLU())


def test_lazily_created_statistics_are_saved_and_restored(tmp_path):
    x = np.random.default_rng(0).standard_normal((8, 3)).astype(np.float32)
    net = lazy_batch_norm_net()
    io.save(net, tmp_path / "fresh.npz")
    assert io.load(tmp_path / "fresh.npz")[1].moving_mean is None
    net.forward(x)
    io.save(net, tmp_path / "m.npz")
    loaded = io.load(tmp_path / "m.npz")
    assert repr(loaded) == repr(net) and loaded[1].n_features == 4
    np.testing.assert_array_equal(loaded.evaluate().forward(x), net.evaluate().forward(x))

    target = lazy_batch_norm_net()
    io.load_weights(target, tmp_path / "m.npz")
    assert target[1].n_features == 4
    np.testing.assert_array_equal(target[1].moving_variance, net[1].moving_variance)
    np.testing.assert_array_equal(target.evaluate().forward(x), net.forward(x))
    target.train().forward(x)  # continues from the loaded statistics, not from fresh ones
    net.train().forward(x)
    np.testing.assert_array_equal(target[1].moving_mean, net[1].moving_mean)


def rewrite(path, edit_meta=None, edit_arrays=None):
    """Rewrite a saved file with its JSON header and/or arrays edited."""
    with np.load(path, allow_pickle=False) as archive:
        arrays = {name: archive[name] for name in archive.files}
    meta = json.loads(str(arrays["__numtorch__"]))
    if edit_meta:
        edit_meta(meta)
    if edit_arrays:
        edit_arrays(arrays)
    arrays["__numtorch__"] = np.array(json.dumps(meta))
    np.savez(path, **arrays)


def set_class(meta, name):
    meta["architecture"]["children"][1]["class"] = name


@pytest.mark.parametrize("edit_meta,edit_arrays,message", [
    (lambda m: set_class(m, "Frobnicate"), None, "unknown layer 'Frobnicate'"),
    (lambda m: m["architecture"]["children"][0]["args"].update(n_in=-3), None,
     "cannot rebuild the model: Linear: expected n_in >= 1"),
    (lambda m: m["architecture"]["children"][0]["args"].update(width=3), None,
     "Linear takes no argument 'width'"),
    (lambda m: m.update(version=99), None, "numtorch file version 99"),
    (lambda m: m.update(format="other"), None, "not a numtorch file"),
    (None, lambda a: a.update({"model/0.W": np.zeros((5, 7), np.float32)}),
     r"0.W of Linear\(n_in=6, n_out=5, bias=True\) has shape \(5, 7\) in the file, "
     r"the model expects \(5, 6\)"),
    (None, lambda a: a.pop("model/2.0.b"), r"do not fit Sequential.*missing \['model/2.0.b'\]"),
    (None, lambda a: a.update({"model/9.W": np.zeros(1)}), r"unexpected \['model/9.W'\]"),
    (None, lambda a: a.update({"model/0.W": np.zeros((5, 6), np.float16)}), "is float16 in the file"),
], ids=["unknown-layer", "bad-argument", "unknown-argument", "version", "format", "shape", "missing",
        "extra", "dtype"])
def test_load_errors_are_clear(tmp_path, edit_meta, edit_arrays, message):
    path = tmp_path / "m.npz"
    io.save(model(), path)
    rewrite(path, edit_meta, edit_arrays)
    with pytest.raises(ValueError, match=message):
        io.load(path)


def test_load_weights_checks_the_architecture(tmp_path):
    io.save(model(seed=1), tmp_path / "m.npz")
    target = model(seed=2)
    io.load_weights(target, tmp_path / "m.npz")
    np.testing.assert_array_equal(target[0].W, model(seed=1)[0].W)
    other = nt.Sequential(nt.Linear(6, 5), nt.ReLU(), nt.Sequential(nt.Linear(5, 3), nt.Tanh()))
    holds = r"holds Sequential\(Linear, LeakyReLU, Sequential\(Linear, Tanh\)\), "
    with pytest.raises(ValueError, match=holds + r"not this model's Sequential\(Linear, ReLU"):
        io.load_weights(other, tmp_path / "m.npz")
    wider = nt.Sequential(nt.Linear(6, 8), nt.LeakyReLU(0.2), nt.Sequential(nt.Linear(8, 3), nt.Tanh()))
    with pytest.raises(ValueError, match="other constructor arguments"):
        io.load_weights(wider, tmp_path / "m.npz")


FILES = Path(__file__).parent / "files"


def test_a_file_of_the_previous_version_loads():
    """tests/files/v1-*.npz were written by numtorch before config() (constructor arguments recorded in
    ``__new__``): a CNN with BatchNormalization, Dropout, LeakyReLU, ELU and a nested Sequential."""
    expected = np.load(FILES / "v1-expected.npz")
    model, meta = io.load_with_metadata(FILES / "v1-model.npz")
    assert meta["input_shape"] == [1, 6, 6]
    np.testing.assert_array_equal(model.evaluate().forward(expected["x"]), expected["output"])
    assert model[0].config() == {"in_channels": 1, "out_channels": 2, "kernel_size": (3, 3), "stride": (1, 1),
                                 "padding": (1, 1), "bias": True}
    target = nt.Sequential(nt.Conv2d(1, 2, 3), nt.ReLU(), nt.MaxPool2d(2), nt.BatchNormalization(0.9),
                           nt.Flatten(), nt.Dropout(0.25), nt.Linear(18, 5), nt.LeakyReLU(0.1), nt.ELU(0.5),
                           nt.Sequential(nt.Linear(5, 3, bias=False), nt.Identity(), nt.LogSoftMax()))
    io.load_weights(target, FILES / "v1-model.npz")
    np.testing.assert_array_equal(target.evaluate().forward(expected["x"]), expected["output"])


def test_a_user_container_is_rebuilt_with_its_config_then_add(tmp_path):
    nt.manual_seed(0)
    net = Scaled(scale=0.5).add(nt.Linear(3, 2)).add(nt.Sequential(nt.Linear(3, 2), nt.Tanh()))
    io.save(net, tmp_path / "m.npz")
    loaded = io.load(tmp_path / "m.npz", custom=[Scaled])
    assert type(loaded) is Scaled and loaded.scale == 0.5 and len(loaded.modules) == 2
    x = np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32)
    np.testing.assert_array_equal(loaded.forward(x), net.forward(x))
    meta, arrays = io.read(tmp_path / "m.npz")
    assert meta["architecture"]["args"] == {"scale": 0.5} and sorted(arrays) == [
        "model/0.W", "model/0.b", "model/1.0.W", "model/1.0.b"]


def test_info_is_kept_in_the_header_as_strict_json(tmp_path):
    info = {"data": "/abs/mine.npz", "hidden": [8, 4], "lr": 0.05}
    io.save(model(), tmp_path / "m.npz", input_shape=(6,), info=info)
    assert io.load_with_metadata(tmp_path / "m.npz")[1]["info"] == info
    assert io.read_header(tmp_path / "m.npz")["info"] == info
    io.save(model(), tmp_path / "plain.npz")
    assert "info" not in io.read_header(tmp_path / "plain.npz")
    with pytest.raises(TypeError, match="save: expected info as a dict with str keys, got list"):
        io.save(model(), tmp_path / "x.npz", info=[1])
    with pytest.raises(TypeError, match="save: expected info of JSON values"):
        io.save(model(), tmp_path / "x.npz", info={"when": object()})
    with pytest.raises(ValueError, match="expected finite numbers in config.. and info, got NaN or infinity"):
        io.save(model(), tmp_path / "x.npz", info={"lr": float("nan")})
    assert not (tmp_path / "x.npz").exists()


def test_load_weights_into_a_nested_branching_model(tmp_path):
    """Any nesting of containers: weights and moving statistics land in the matching modules; another
    branching structure is refused."""
    from numtorch import models

    source, shape = models.resnet((1, 8, 8), 10)
    source.forward(np.random.default_rng(0).standard_normal((4, 1, 8, 8)).astype(np.float32))
    io.save(source, tmp_path / "r.npz", input_shape=shape)
    nt.manual_seed(1)
    target, _ = models.resnet((1, 8, 8), 10)
    io.load_weights(target, tmp_path / "r.npz")
    for ours, theirs in zip(flatten(target.getParameters()) + flatten(target.getBuffers()),
                            flatten(source.getParameters()) + flatten(source.getBuffers())):
        np.testing.assert_array_equal(ours, theirs)
    other = nt.Sequential(nt.ConcatTable(nt.Linear(3, 2), nt.Identity()), nt.JoinTable(1))
    with pytest.raises(ValueError, match="r.npz"):
        io.load_weights(other, tmp_path / "r.npz")
