"""The Module/Criterion contract beyond what the harness checks: errors, dtypes, astype."""

import numpy as np
import pytest

import numtorch as nt
from harness import as_float, dtypes_of, set_mode
from module_table import MODULES
from numtorch._table import map_table, shape_of
from numtorch.module import flatten


class Double(nt.Module):
    def updateOutput(self, input):
        self.output = 2 * input
        return self.output

    def updateGradInput(self, input, gradOutput):
        self.gradInput = 2 * gradOutput
        return self.gradInput


def test_new_module_state():
    module = Double()
    assert module.output is None and module.gradInput is None and module.training is True
    assert module.getParameters() == [] and module.getGradParameters() == []
    assert repr(module) == "Double"


def test_train_and_evaluate_set_the_flag_and_return_the_module():
    module = Double()
    assert module.evaluate() is module and module.training is False
    assert module.train() is module and module.training is True


def test_config_gives_the_constructor_arguments():
    assert nt.Linear(3, 2, bias=False).config() == {"n_in": 3, "n_out": 2, "bias": False}
    assert Double().config() == {} and nt.Sequential(nt.ReLU()).config() == {}


@pytest.mark.parametrize("case", MODULES, ids=str)
def test_config_rebuilds_an_equivalent_module(case):
    """``type(m)(**m.config())`` (then ``add`` for each child of a container) is ``m`` but for its weights."""
    module, _ = case.build(np.random.default_rng(0), 2)

    def rebuild(module):
        copy = type(module)(**module.config())
        for child in getattr(module, "modules", ()):
            copy.add(rebuild(child))
        return copy

    copy = rebuild(module)
    assert repr(copy) == repr(module) and copy.config() == module.config()
    assert ([(p.shape, p.dtype) for p in flatten(copy.getParameters())]
            == [(p.shape, p.dtype) for p in flatten(module.getParameters())])


def modules_in(module):
    yield module
    for child in getattr(module, "modules", ()):
        yield from modules_in(child)


@pytest.mark.parametrize("case", MODULES, ids=str)
def test_array_shapes_declares_what_the_constructor_creates(case):
    """``load`` trusts ``array_shapes`` to refuse a file before building: it must match the real arrays."""
    module, _ = case.build(np.random.default_rng(0), 2)
    for part in modules_in(module):
        fresh = type(part)(**part.config()) if not hasattr(part, "modules") else part
        held = {name: None if getattr(fresh, name) is None else getattr(fresh, name).shape
                for name in (*fresh._parameters, *fresh._buffers)}
        assert type(part).array_shapes(**part.config()) == held


def test_every_layer_with_arrays_declares_them():
    import inspect

    from numtorch.io.architecture import module_classes

    default = inspect.getattr_static(nt.Module, "array_shapes")
    for cls in module_classes().values():
        if cls._parameters or cls._buffers:
            assert inspect.getattr_static(cls, "array_shapes") is not default, cls
    assert nt.BatchNormalization.array_shapes(n_features=None) == {"moving_mean": None,
                                                                   "moving_variance": None}
    with pytest.raises(TypeError, match="BatchNormalization: expected n_features as an int, got str 'abc'"):
        nt.BatchNormalization.array_shapes(n_features="abc")
    assert nt.Linear.array_shapes(3, 2, bias=False) == {"W": (2, 3), "b": None}


@pytest.mark.parametrize("bad,error,message", [
    ([[1.0, 2.0]], TypeError, r"Double: expected input as a NumPy float array, got list"),
    (np.ones((2, 3), dtype=np.int64), TypeError, r"dtype float32 or float64, got int64 \(convert it"),
    (np.ones((2, 3), dtype=bool), TypeError, "got bool"),
    (np.ones((2, 3), dtype=np.float16), TypeError, "got float16"),
    (np.zeros((0, 3), dtype=np.float32), ValueError, r"non-empty batch, got shape \(0, 3\)"),
    (np.float32(1.0), TypeError, "got float32"),
])
def test_forward_rejects_what_is_not_a_float_batch(bad, error, message):
    with pytest.raises(error, match=message):
        Double().forward(bad)


def test_backward_before_forward_raises():
    with pytest.raises(ValueError, match="Double: backward called before forward"):
        Double().backward(np.ones((2, 3)), np.ones((2, 3)))


def test_backward_checks_gradoutput():
    module = Double()
    x = np.ones((2, 3), dtype=np.float32)
    module.forward(x)
    expected = r"Double: expected gradOutput of the output's shape \(2, 3\), got \(3, 2\)"
    with pytest.raises(ValueError, match=expected):
        module.backward(x, np.ones((3, 2), dtype=np.float32))
    with pytest.raises(TypeError, match="expected gradOutput of dtype float32 or float64, got int64"):
        module.backward(x, np.ones((2, 3), dtype=np.int64))


def test_missing_overrides_say_which_class():
    class Half(nt.Module):
        pass

    with pytest.raises(NotImplementedError, match="Half does not implement updateOutput"):
        Half().forward(np.ones((1, 1)))
    with pytest.raises(NotImplementedError, match="Half does not implement updateGradInput"):
        Half().updateGradInput(np.ones((1, 1)), np.ones((1, 1)))


def test_criterion_forward_returns_a_float_and_checks_its_input():
    criterion = nt.MSECriterion()
    assert criterion.output is None and criterion.gradInput is None
    loss = criterion.forward(np.ones((2, 2), np.float32), np.zeros((2, 2), np.float32))
    assert type(loss) is float and loss == criterion.output == 2.0
    with pytest.raises(TypeError, match="MSECriterion: expected input as a NumPy float array, got list"):
        criterion.forward([1.0], np.zeros(1))
    with pytest.raises(TypeError, match="MSECriterion: expected input of dtype"):
        criterion.backward(np.ones((2, 2), np.int32), np.zeros((2, 2)))


def test_astype_converts_parameters_gradients_and_buffers_and_returns_the_module():
    net = nt.Sequential(nt.Linear(3, 4), nt.BatchNormalization(n_features=4), nt.ChannelwiseScaling(4))
    arrays = flatten(net.getParameters()) + flatten(net.getGradParameters()) + flatten(net.getBuffers())
    assert all(a.dtype == np.float32 for a in arrays)
    assert net.astype(np.float64) is net
    arrays = flatten(net.getParameters()) + flatten(net.getGradParameters()) + flatten(net.getBuffers())
    assert len(arrays) == 10 and all(a.dtype == np.float64 for a in arrays)
    assert net.astype("float32") is net
    assert all(a.dtype == np.float32 for a in flatten(net.getParameters()))


@pytest.mark.parametrize("dtype", [np.int32, np.float16, "complex128"])
def test_astype_rejects_non_float_types(dtype):
    with pytest.raises(TypeError, match=r"Linear\(2 -> 2\): astype expects float32 or float64"):
        nt.Linear(2, 2).astype(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case,mode", [(case, mode) for case in MODULES for mode in case.modes],
                         ids=lambda v: str(v))
def test_outputs_keep_the_input_dtype(case, mode, dtype):
    """float32 parameters with float64 input give float64 results, and the reverse."""
    rng = np.random.default_rng(0)
    nt.manual_seed(0)
    module, x = case.build(rng, 4)
    set_mode(module, mode)
    x = as_float(x, dtype)
    output = module.forward(x)
    assert dtypes_of(output) == {np.dtype(dtype).name}
    grad_input = module.backward(x, map_table(np.ones_like, output))
    assert dtypes_of(grad_input) == {np.dtype(dtype).name} and shape_of(grad_input) == shape_of(x)
    assert all(p.dtype == np.float32 for p in flatten(module.getParameters()))
    assert all(g.dtype == np.float32 for g in flatten(module.getGradParameters()))


def test_flatten_nested_lists():
    a, b, c = np.zeros(1), np.zeros(2), np.zeros(3)
    assert [x.shape for x in flatten([[a, []], [[b]], c])] == [(1,), (2,), (3,)]


def test_needs_input_grad_false_skips_the_input_gradient_only():
    nt.manual_seed(0)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, 4)).astype(np.float32)
    full = nt.Sequential(nt.Linear(4, 3), nt.ReLU(), nt.Linear(3, 2))
    nt.manual_seed(0)
    skipping = nt.Sequential(nt.Linear(4, 3), nt.ReLU(), nt.Linear(3, 2))
    skipping[0].needs_input_grad = False
    grad = rng.standard_normal((5, 2)).astype(np.float32)
    for model in (full, skipping):
        model.zeroGradParameters()
        model.forward(x)
    assert full.backward(x, grad).shape == x.shape
    assert skipping.backward(x, grad) is None and skipping[0].gradInput is None
    for ours, theirs in zip(flatten(skipping.getGradParameters()), flatten(full.getGradParameters())):
        np.testing.assert_array_equal(ours, theirs)
