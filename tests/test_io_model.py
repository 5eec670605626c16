"""numtorch.io: save/load round trips for every row of the module table, errors, checkpoints."""

import json
import os

import numpy as np
import pytest

import numtorch as nt
from harness import set_mode
from module_table import MODULES
from numtorch import io
from numtorch.data import Batches
from numtorch.module import Module, flatten
from numtorch.optim import SGD, Adam
from numtorch.random import generator


def run(module, x, grad_output, rng_state):
    """Forward and backward from a fixed RNG state; copies of everything that comes out."""
    nt.set_rng_state(rng_state)
    module.zeroGradParameters()
    output = module.forward(x).copy()
    grad_input = module.backward(x, grad_output).copy()
    return output, grad_input, [g.copy() for g in flatten(module.getGradParameters())]


def module_modes():
    return [pytest.param(case, mode, id=f"{case.name}-{mode}", marks=case.marks)
            for case in MODULES for mode in case.modes]


@pytest.mark.parametrize("case,mode", module_modes())
def test_round_trip_gives_identical_forward_and_backward(tmp_path, case, mode):
    rng = np.random.default_rng(0)
    nt.manual_seed(0)
    module, x = case.build(rng, 4)
    x = np.asarray(x, dtype=np.float32)
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
    output = module.forward(x)
    grad_output = rng.standard_normal(output.shape).astype(np.float32)
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


class Noise(Module):
    """A user-defined layer: adds N(0, scale^2) noise in training (draws from numtorch's RNG)."""

    _parameters = ("shift",)
    _gradients = ("grad_shift",)

    def __init__(self, n, scale=0.5, sizes=(1, 2)):
        super().__init__()
        self.scale, self.sizes = scale, sizes
        self.shift = np.zeros(n, np.float32)
        self.grad_shift = np.zeros_like(self.shift)

    def updateOutput(self, input):
        noise = generator().standard_normal(input.shape).astype(input.dtype) if self.training else 0
        self.output = input + noise * input.dtype.type(self.scale) + self.shift
        return self.output

    def updateGradInput(self, input, gradOutput):
        self.gradInput = gradOutput.copy()
        return self.gradInput

    def accGradParameters(self, input, gradOutput):
        self.grad_shift += gradOutput.sum(axis=0)


class Holder(Module):
    """A user module built around another module (its arrays are saved through the argument)."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner


def test_user_modules_round_trip_with_tuple_and_module_arguments(tmp_path):
    net = nt.Sequential(nt.Linear(2, 3), Noise(3, scale=0.25, sizes=(4, 5)))
    net[1].shift[:] = [1, 2, 3]
    io.save(net, tmp_path / "m.npz")
    loaded = io.load(tmp_path / "m.npz")
    assert loaded[1].sizes == (4, 5) and loaded[1].scale == 0.25
    np.testing.assert_array_equal(loaded[1].shift, [1, 2, 3])

    holder = Holder(Noise(2))
    holder.inner.shift[:] = [5, 6]
    io.save(holder, tmp_path / "h.npz")
    np.testing.assert_array_equal(io.load(tmp_path / "h.npz").inner.shift, [5, 6])


class Options(Module):
    """A user module taking ``*sizes`` and ``**options``."""

    def __init__(self, *sizes, **options):
        super().__init__()
        self.sizes, self.options = sizes, options


def test_var_positional_and_keyword_arguments_round_trip(tmp_path):
    io.save(Options(1, 2, mode="fast", extra={"a": (1, 2)}), tmp_path / "m.npz")
    loaded = io.load(tmp_path / "m.npz")
    assert loaded.sizes == (1, 2) and loaded.options == {"mode": "fast", "extra": {"a": (1, 2)}}


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


def test_arguments_that_are_not_data_are_refused(tmp_path):
    with pytest.raises(TypeError, match=r"cannot store argument 'scale' of Noise: a ndarray"):
        io.save(Noise(2, scale=np.ones(2)), tmp_path / "m.npz")
    with pytest.raises(TypeError, match="expected a numtorch Module, got list"):
        io.save([np.zeros(2)], tmp_path / "m.npz")
    assert not os.listdir(tmp_path)


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
     r"W of Linear\(6 -> 5\) has shape \(5, 7\) in the file, the model expects \(5, 6\)"),
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


@pytest.mark.parametrize("cut", [0.1, 0.5, 0.99])
def test_truncated_and_corrupt_files(tmp_path, cut):
    path = tmp_path / "m.npz"
    io.save(model(), path)
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * cut)])
    with pytest.raises(ValueError, match="truncated or corrupt"):
        io.load(path)


def test_garbage_and_missing_files(tmp_path):
    np.savez(tmp_path / "plain.npz", W=np.zeros(2))
    with pytest.raises(ValueError, match="no __numtorch__ entry"):
        io.load(tmp_path / "plain.npz")
    (tmp_path / "junk.npz").write_bytes(b"hello")
    with pytest.raises(ValueError, match="truncated or corrupt"):
        io.load(tmp_path / "junk.npz")
    np.save(tmp_path / "one.npy", np.zeros(2))
    with pytest.raises(ValueError, match="single .npy array"):
        io.load(tmp_path / "one.npy")
    with pytest.raises(FileNotFoundError, match="no such file"):
        io.load(tmp_path / "absent.npz")


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


def test_writes_are_atomic(tmp_path, monkeypatch):
    path = tmp_path / "m.npz"
    io.save(model(seed=1), path)
    before = path.read_bytes()

    def failing_savez(file, **arrays):
        file.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", failing_savez)
    with pytest.raises(OSError, match="disk full"):
        io.save(model(seed=2), path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["m.npz"]


def train_epochs(net, optimizer, batches, epochs):
    criterion = nt.CrossEntropyCriterion()
    for _ in range(epochs):
        for xb, yb in batches:
            optimizer.zero_grad()
            criterion.forward(net.forward(xb), yb)
            net.backward(xb, criterion.backward(net.output, yb))
            optimizer.step()


def noisy_model(seed):
    nt.manual_seed(seed)
    return nt.Sequential(nt.Linear(4, 8), Noise(8), nt.ReLU(), nt.Linear(8, 3))


@pytest.mark.parametrize("make_optimizer", [lambda m: Adam(m, lr=1e-2),
                                            lambda m: SGD(m, lr=0.1, momentum=0.9, nesterov=True)],
                         ids=["Adam", "SGD"])
def test_checkpoint_resume_equals_uninterrupted_run(tmp_path, make_optimizer):
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((50, 4)).astype(np.float32), rng.integers(0, 3, 50)

    net = noisy_model(1)
    optimizer, batches = make_optimizer(net), Batches(X, y, 8, seed=3)
    train_epochs(net, optimizer, batches, 4)
    uninterrupted = [p.copy() for p in flatten(net.getParameters())]

    net = noisy_model(1)
    optimizer, batches = make_optimizer(net), Batches(X, y, 8, seed=3)
    train_epochs(net, optimizer, batches, 2)
    io.save_checkpoint(tmp_path / "c.npz", net, optimizer, 2, batches=batches.state_dict(), note=[1, "a"])
    nt.manual_seed(123)  # the interrupted process's later draws must not matter

    resumed = noisy_model(99)
    optimizer, batches = make_optimizer(resumed), Batches(X, y, 8, seed=42)
    epoch, state = io.load_checkpoint(tmp_path / "c.npz", resumed, optimizer)
    assert epoch == 2 and state["note"] == [1, "a"]
    batches.load_state_dict(state["batches"])
    train_epochs(resumed, optimizer, batches, 2)
    for ours, theirs in zip(flatten(resumed.getParameters()), uninterrupted):
        np.testing.assert_array_equal(ours, theirs)


def test_checkpoint_errors(tmp_path):
    net = model()
    optimizer = Adam(net)
    io.save(net, tmp_path / "m.npz")
    with pytest.raises(ValueError, match="a saved model, not a checkpoint"):
        io.load_checkpoint(tmp_path / "m.npz", net, optimizer)
    with pytest.raises(TypeError, match="JSON-serializable"):
        io.save_checkpoint(tmp_path / "c.npz", net, optimizer, 1, bad=object())
    assert not (tmp_path / "c.npz").exists()
    io.save_checkpoint(tmp_path / "c.npz", net, optimizer, 1)
    assert isinstance(io.load(tmp_path / "c.npz"), nt.Sequential)
    with pytest.raises(ValueError, match="the state is of 'Adam', not SGD"):
        io.load_checkpoint(tmp_path / "c.npz", net, SGD(net, lr=0.1))
