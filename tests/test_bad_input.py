"""The bad-input matrix: every wrong call gets a clear ValueError or TypeError.

A clear error names the module or function (its repr or name), says what it
expected and what it got. The module and criterion cases are generated from
the shared table (``module_table.py``), so a new row is covered without
touching this file. Which shapes are wrong is decided by PyTorch: a perturbed
input (an axis added, dropped, grown or shrunk) that the row's PyTorch
reference rejects must get a clear error from numtorch; one that PyTorch
accepts must either get a clear error (numtorch may be stricter) or give
PyTorch's result.
"""

import warnings

import numpy as np
import pytest

import numtorch
import numtorch.optim
from harness import as_float, assert_close, import_torch, set_mode, to_numpy, to_torch
from module_table import CRITERIONS, MODULES
from numtorch._checks import label
from numtorch._table import leaves, map_table, shape_of
from numtorch.module import flatten

torch = import_torch()

BATCH = 3


def module_tree(module):
    """``module`` and every module inside it."""
    yield module
    for child in getattr(module, "modules", ()):
        yield from module_tree(child)


def with_first_entry(data, change):
    """``change(data)`` for an array; for a table, the table with its first array changed."""
    if not isinstance(data, list):
        return change(data)
    return [with_first_entry(data[0], change), *data[1:]]


def first_array(data):
    return leaves(data)[0]


def assert_clear(error, owners, *got):
    """The message of exception ``error`` names one of ``owners``, says "expected", shows all of ``got``."""
    message = str(error)
    names = [label(o) for o in owners]
    assert any(name in message for name in names), f"message {message!r} names none of {names}"
    assert "expected" in message, f"message {message!r} does not say what was expected"
    for text in got:
        assert str(text) in message, f"message {message!r} does not show what it got: {text!r}"


def build_module(case, mode):
    rng = np.random.default_rng(0)
    numtorch.manual_seed(0)
    module, x = case.build(rng, BATCH)
    set_mode(module, mode)
    return module, as_float(x)


def build_criterion(case):
    criterion, x, target = case.build(np.random.default_rng(0), BATCH)
    return criterion, np.asarray(x, dtype=np.float32), target


def torch_copies(module):
    """The module's parameters and buffers as tensors, taken before numtorch's forward runs."""
    return ([torch.tensor(p) for p in flatten(module.getParameters())],
            [torch.tensor(b) for b in flatten(module.getBuffers())])


def torch_module_output(case, module, x, params, buffers):
    """The row's PyTorch reference on ``x``, or None where PyTorch rejects it."""
    try:
        with torch.no_grad():
            return to_numpy(case.reference(module, to_torch(torch, x), params, buffers))
    except Exception:
        return None


def torch_criterion_output(case, criterion, x, target):
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # PyTorch warns where it broadcasts a mismatched target
            return case.reference(criterion, torch.tensor(x), torch.tensor(target)).numpy()
    except Exception:
        return None


def shape_perturbations(x):
    """(name, input): the input with an axis added, dropped, grown or shrunk; for a table, its first
    array so, and the table with its last entry dropped or repeated."""
    if isinstance(x, list):
        for name, bad in shape_perturbations(first_array(x)):
            yield f"entry-{name}", with_first_entry(x, lambda _, bad=bad: bad)
        if len(x) > 1:
            yield "entry-dropped", x[:-1]
        yield "entry-repeated", [*x, x[-1]]
        return
    yield "axis-appended", x[..., None]
    yield "axis-prepended", x[None]
    if x.ndim >= 2:
        yield "batch-axis-dropped", x[0]
        yield "last-axis-dropped", x[..., 0]
    if x.ndim > 2:
        yield "flattened", x.reshape(x.shape[0], -1)
    for axis in range(1, x.ndim):
        grown = np.concatenate([x, x.take([0], axis=axis)], axis=axis)
        yield f"axis{axis}-grown", grown
        if x.shape[axis] > 1:
            yield f"axis{axis}-shrunk", x.take(range(x.shape[axis] - 1), axis=axis)


def module_rows():
    for case in MODULES:
        for mode in case.modes:
            yield case, mode


def module_shape_cases():
    for case, mode in module_rows():
        _, x = build_module(case, mode)
        for name, _ in shape_perturbations(x):
            yield pytest.param(case, mode, name, id=f"{case.name}-{mode}-{name}")


@pytest.mark.parametrize("case,mode,perturbation", list(module_shape_cases()))
def test_module_wrong_shape(case, mode, perturbation):
    module, x = build_module(case, mode)
    bad = dict(shape_perturbations(x))[perturbation]
    params, buffers = torch_copies(module)
    try:
        output = module.forward(bad)
    except (ValueError, TypeError) as error:
        assert_clear(error, list(module_tree(module)), shape_of(bad))
        return
    # After forward: a reference may read what forward drew (Dropout's mask).
    expected = torch_module_output(case, module, bad, params, buffers)
    assert expected is not None, (
        f"{case}: input of shape {shape_of(bad)} ({perturbation}) accepted silently; PyTorch rejects it")
    assert_close(output, expected, case.rtol, case.atol, f"{case} on {perturbation} input")


NOT_FLOAT = {
    "int64": lambda x: x.astype(np.int64),
    "int32": lambda x: x.astype(np.int32),
    "uint8": lambda x: x.astype(np.uint8),
    "bool": lambda x: x > 0,
    "float16": lambda x: x.astype(np.float16),
    "complex128": lambda x: x.astype(np.complex128),
}

NOT_ARRAY = {
    "list": lambda x: x.tolist(),
    "float": lambda x: float(x.flat[0]),
    "None": lambda x: None,
    "string": lambda x: "x",
}


def first_modes():
    return [pytest.param(case, case.modes[0], id=case.name) for case in MODULES]


@pytest.mark.parametrize("kind", sorted(NOT_FLOAT))
@pytest.mark.parametrize("case,mode", list(first_modes()))
def test_module_input_not_float(case, mode, kind):
    module, x = build_module(case, mode)
    bad = with_first_entry(x, NOT_FLOAT[kind])
    with pytest.raises(TypeError) as error:
        module.forward(bad)
    assert_clear(error.value, [module], first_array(bad).dtype, "float32 or float64")


@pytest.mark.parametrize("kind", sorted(NOT_ARRAY))
@pytest.mark.parametrize("case,mode", list(first_modes()))
def test_module_input_not_array(case, mode, kind):
    module, x = build_module(case, mode)
    bad = with_first_entry(x, NOT_ARRAY[kind])
    with pytest.raises(TypeError) as error:
        module.forward(bad)
    assert_clear(error.value, [module], type(NOT_ARRAY[kind](first_array(x))).__name__)


@pytest.mark.parametrize("case,mode", list(first_modes()))
def test_module_empty_batch(case, mode):
    module, x = build_module(case, mode)
    empty = first_array(x)[:0]
    with pytest.raises(ValueError) as error:
        module.forward(with_first_entry(x, lambda _: empty))
    assert_clear(error.value, [module], "non-empty batch", empty.shape)


@pytest.mark.parametrize("case,mode", list(first_modes()))
def test_module_scalar_input(case, mode):
    module, x = build_module(case, mode)
    with pytest.raises(ValueError) as error:
        module.forward(with_first_entry(x, lambda _: np.array(1.0, dtype=np.float32)))
    assert_clear(error.value, [module], "()")


@pytest.mark.parametrize("case,mode", list(first_modes()))
def test_module_backward_before_forward(case, mode):
    module, x = build_module(case, mode)
    with pytest.raises(ValueError) as error:
        module.backward(x, x)
    assert label(module) in str(error.value) and "before forward" in str(error.value)


def gradoutput_cases():
    for case, mode in module_rows():
        for kind in ("batch-grown", "axis-appended", "int64", "list"):
            yield pytest.param(case, mode, kind, id=f"{case.name}-{mode}-{kind}")


@pytest.mark.parametrize("case,mode,kind", list(gradoutput_cases()))
def test_module_bad_gradoutput(case, mode, kind):
    module, x = build_module(case, mode)
    output = module.forward(x)
    bad = with_first_entry(output, {
        "batch-grown": lambda output: np.concatenate([output, output[:1]]),
        "axis-appended": lambda output: output[..., None],
        "int64": lambda output: output.astype(np.int64),
        "list": lambda output: output.tolist(),
    }[kind])
    with pytest.raises((ValueError, TypeError)) as error:
        module.backward(x, bad)
    got = kind if kind in ("int64", "list") else shape_of(bad)
    assert_clear(error.value, list(module_tree(module)), got)


@pytest.mark.parametrize("case,mode", list(first_modes()))
def test_module_backward_input_other_than_forward(case, mode):
    module, x = build_module(case, mode)
    output = module.forward(x)
    other = map_table(lambda array: np.concatenate([array, array[:1]]), x)
    with pytest.raises(ValueError) as error:
        module.backward(other, map_table(np.ones_like, output))
    assert_clear(error.value, list(module_tree(module)), shape_of(other), shape_of(x))


# Criterions.

def criterion_shape_cases():
    for case in CRITERIONS:
        _, x, _ = build_criterion(case)
        for name, _ in shape_perturbations(x):
            yield pytest.param(case, name, id=f"{case.name}-{name}")


@pytest.mark.parametrize("case,perturbation", list(criterion_shape_cases()))
def test_criterion_wrong_input_shape(case, perturbation):
    criterion, x, target = build_criterion(case)
    bad = dict(shape_perturbations(x))[perturbation]
    expected = torch_criterion_output(case, criterion, bad, target)
    for call in (criterion.forward, criterion.backward):
        try:
            result = call(bad, target)
        except (ValueError, TypeError) as error:
            assert_clear(error, [criterion],
                         bad.shape)
            continue
        assert expected is not None, (
            f"{case}: input of shape {bad.shape} ({perturbation}) accepted silently; PyTorch rejects it")
        if call == criterion.forward:
            assert_close(np.asarray(result), expected, case.rtol, case.atol, f"{case} on {perturbation}")


@pytest.mark.parametrize("kind", sorted(NOT_FLOAT))
@pytest.mark.parametrize("case", CRITERIONS, ids=str)
def test_criterion_input_not_float(case, kind):
    criterion, x, target = build_criterion(case)
    bad = NOT_FLOAT[kind](x)
    for call in (criterion.forward, criterion.backward):
        with pytest.raises(TypeError) as error:
            call(bad, target)
        assert_clear(error.value, [criterion], bad.dtype)


@pytest.mark.parametrize("kind", sorted(NOT_ARRAY))
@pytest.mark.parametrize("case", CRITERIONS, ids=str)
def test_criterion_input_not_array(case, kind):
    criterion, x, target = build_criterion(case)
    bad = NOT_ARRAY[kind](x)
    for call in (criterion.forward, criterion.backward):
        with pytest.raises(TypeError) as error:
            call(bad, target)
        assert_clear(error.value, [criterion], type(bad).__name__)


@pytest.mark.parametrize("case", CRITERIONS, ids=str)
def test_criterion_empty_batch(case):
    criterion, x, target = build_criterion(case)
    for call in (criterion.forward, criterion.backward):
        with pytest.raises(ValueError) as error:
            call(x[:0], target[:0])
        assert_clear(error.value, [criterion], "non-empty batch")


def label_targets(case):
    return build_criterion(case)[2].ndim == 1


def target_perturbations(x, target):
    """(name, bad target, exception type, text the message must show)."""
    n = x.shape[0]
    yield "batch-grown", np.concatenate([target, target[:1]]), ValueError, str(n + 1)
    yield "batch-shrunk", target[:-1], ValueError, str(n - 1)
    yield "list", target.tolist(), TypeError, "list"
    yield "axis-appended", target[..., None], (ValueError, TypeError), str(target[..., None].shape)
    yield "bool", target > 0, TypeError, "bool"
    if target.dtype.kind in "iu":
        c = x.shape[1]
        high = target.copy()
        high[-1] = c
        yield "label-too-large", high, ValueError, str(c)
        negative = target.copy()
        negative[0] = -1
        yield "label-negative", negative, ValueError, "-1"
        yield "labels-float", target.astype(np.float32), TypeError, "float32"
    else:
        for value in (np.nan, np.inf, -np.inf):
            bad = target.copy()
            bad.flat[-1] = value
            yield f"target-{value}", bad, ValueError, str(value)
        yield "target-int", target.astype(np.int64), TypeError, "int64"
        if target.ndim >= 2:
            wide = np.concatenate([target, target[:, :1]], axis=1)
            yield "target-wider", wide, ValueError, str(wide.shape)


def criterion_target_cases():
    for case in CRITERIONS:
        _, x, target = build_criterion(case)
        for name, _, _, _ in target_perturbations(x, target):
            yield pytest.param(case, name, id=f"{case.name}-{name}")


@pytest.mark.parametrize("case,perturbation", list(criterion_target_cases()))
def test_criterion_bad_target(case, perturbation):
    criterion, x, target = build_criterion(case)
    _, bad, error_type, got = next(p for p in target_perturbations(x, target) if p[0] == perturbation)
    for call in (criterion.forward, criterion.backward):
        with pytest.raises(error_type) as error:
            call(x, bad)
        assert_clear(error.value, [criterion], got)


# gradcheck.

def small_linear():
    numtorch.manual_seed(0)
    return numtorch.Linear(3, 2)


GRADCHECK_CASES = {
    "not-a-module": (lambda: ("ReLU", np.ones((2, 3))), {}, TypeError, "str"),
    "int-input": (lambda: (small_linear(), np.ones((2, 3), dtype=np.int64)), {}, TypeError, "int64"),
    "list-input": (lambda: (small_linear(), [[1.0, 2.0, 3.0]]), {}, TypeError, "list"),
    "empty-batch": (lambda: (small_linear(), np.ones((0, 3))), {}, ValueError, "(0, 3)"),
    "wrong-features": (lambda: (small_linear(), np.ones((2, 4))), {}, ValueError, "(2, 4)"),
    "criterion-without-target": (lambda: (numtorch.CrossEntropyCriterion(), np.ones((2, 3))), {},
                                 ValueError, "target"),
    "eps-zero": (lambda: (small_linear(), np.ones((2, 3))), {"eps": 0.0}, ValueError, "0.0"),
    "eps-negative": (lambda: (small_linear(), np.ones((2, 3))), {"eps": -1e-6}, ValueError, "-1e-06"),
    "eps-nan": (lambda: (small_linear(), np.ones((2, 3))), {"eps": float("nan")}, ValueError, "nan"),
    "eps-string": (lambda: (small_linear(), np.ones((2, 3))), {"eps": "1e-6"}, TypeError, "str"),
    "seed-negative": (lambda: (small_linear(), np.ones((2, 3))), {"seed": -1}, ValueError, "-1"),
    "seed-float": (lambda: (small_linear(), np.ones((2, 3))), {"seed": 0.5}, TypeError, "float"),
}


@pytest.mark.parametrize("kind", sorted(GRADCHECK_CASES))
def test_gradcheck_bad_arguments(kind):
    make, kwargs, error_type, got = GRADCHECK_CASES[kind]
    module, x = make()
    with pytest.raises(error_type) as error:
        numtorch.gradcheck(module, x, **kwargs)
    assert_clear(error.value, ["gradcheck", module], got)


def test_gradcheck_bad_target_names_the_criterion():
    criterion = numtorch.CrossEntropyCriterion()
    with pytest.raises(ValueError) as error:
        numtorch.gradcheck(criterion, np.ones((2, 3)), np.array([0, 3]))
    assert_clear(error.value, [criterion], "3")


# Notebook-style optimizers.

def model_and_grads():
    numtorch.manual_seed(0)
    model = numtorch.Sequential(numtorch.Linear(3, 2))
    return model.getParameters(), model.getGradParameters()


OPTIMIZERS = {
    "sgd_momentum": (numtorch.optim.sgd_momentum, {"learning_rate": 0.1, "momentum": 0.9}),
    "adam_optimizer": (numtorch.optim.adam_optimizer, {"learning_rate": 0.1}),
}

BAD_CONFIGS = {
    "learning_rate-negative": ({"learning_rate": -0.1}, ValueError, "-0.1"),
    "learning_rate-nan": ({"learning_rate": float("nan")}, ValueError, "nan"),
    "learning_rate-inf": ({"learning_rate": float("inf")}, ValueError, "inf"),
    "learning_rate-missing": ({"learning_rate": None}, TypeError, "NoneType"),
    "learning_rate-string": ({"learning_rate": "0.1"}, TypeError, "str"),
    "learning_rate-bool": ({"learning_rate": True}, TypeError, "bool"),
}
SGD_CONFIGS = {
    "momentum-negative": ({"momentum": -0.5}, ValueError, "-0.5"),
    "momentum-above-1": ({"momentum": 1.5}, ValueError, "1.5"),
}
ADAM_CONFIGS = {
    "beta1-1": ({"beta1": 1.0}, ValueError, "1.0"),
    "beta1-negative": ({"beta1": -0.1}, ValueError, "-0.1"),
    "beta2-above-1": ({"beta2": 1.5}, ValueError, "1.5"),
    "epsilon-negative": ({"epsilon": -1e-8}, ValueError, "-1e-08"),
}


def optimizer_config_cases():
    for name in OPTIMIZERS:
        extra = SGD_CONFIGS if name == "sgd_momentum" else ADAM_CONFIGS
        for kind, spec in {**BAD_CONFIGS, **extra}.items():
            yield pytest.param(name, spec, id=f"{name}-{kind}")


@pytest.mark.parametrize("name,spec", list(optimizer_config_cases()))
def test_notebook_optimizer_bad_config(name, spec):
    step, config = OPTIMIZERS[name]
    change, error_type, got = spec
    params, grads = model_and_grads()
    before = [p.copy() for p in flatten(params)]
    with pytest.raises(error_type) as error:
        step(params, grads, {**config, **change}, {})
    assert_clear(error.value, [name], got)
    for p, p0 in zip(flatten(params), before):
        np.testing.assert_array_equal(p, p0, err_msg=f"{name} changed parameters before failing")


def bad_optimizer_arguments(params, grads, config):
    """(kind, positional arguments, exception type, text the message must show)."""
    yield "config-not-dict", (params, grads, [0.1], {}), TypeError, "list"
    yield "state-not-dict", (params, grads, config, None), TypeError, "NoneType"
    yield "fewer-gradients", (params, flatten(grads)[:1], config, {}), ValueError, "but 1 gradients"
    swapped = list(reversed(flatten(grads)))
    yield "mismatched-shapes", (params, swapped, config, {}), ValueError, str(swapped[0].shape)
    ints = [g.astype(np.int64) for g in flatten(grads)]
    yield "int-gradients", (params, ints, config, {}), TypeError, "int64"
    int_params = [p.astype(np.int64) for p in flatten(params)]
    yield "int-parameters", (int_params, grads, config, {}), TypeError, "int64"
    yield "list-gradient", (params, [g.tolist() for g in flatten(grads)], config, {}), TypeError, "float"


def optimizer_argument_cases():
    for name in OPTIMIZERS:
        params, grads = model_and_grads()
        for kind, *_ in bad_optimizer_arguments(params, grads, {}):
            yield pytest.param(name, kind, id=f"{name}-{kind}")


@pytest.mark.parametrize("name,kind", list(optimizer_argument_cases()))
def test_notebook_optimizer_bad_arguments(name, kind):
    step, config = OPTIMIZERS[name]
    params, grads = model_and_grads()
    _, args, error_type, got = next(
        case for case in bad_optimizer_arguments(params, grads, config) if case[0] == kind)
    with pytest.raises(error_type) as error:
        step(*args)
    assert_clear(error.value, [name], got)


# Constructor arguments (hyper-parameters).

# Arguments that count from the end when negative, as Python indices do.
NEGATIVE_ALLOWED = {"dim", "index"}


def constructor_cases():
    """Every number in a table row's ``config()``, replaced by NaN, infinity, -1 and a string."""
    for case in MODULES:
        module, _ = build_module(case, case.modes[0])
        args, kwargs = (), module.config()
        where = list(kwargs.items())
        for key, value in where:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            for bad, got in ((float("nan"), "nan"), (float("inf"), "inf"), (-1, "-1"), ("1", "'1'")):
                if key in NEGATIVE_ALLOWED and bad == -1:
                    continue
                yield pytest.param(type(module), args, kwargs, key, bad, got,
                                   id=f"{case.name}-{key}-{got}")


@pytest.mark.parametrize("cls,args,kwargs,key,bad,got", list(constructor_cases()))
def test_constructor_bad_number(cls, args, kwargs, key, bad, got):
    if isinstance(key, int):
        args = (*args[:key], bad, *args[key + 1:])
    else:
        kwargs = {**kwargs, key: bad}
    with pytest.raises((ValueError, TypeError)) as error:
        cls(*args, **kwargs)
    assert_clear(error.value, [cls.__name__], got)


# Hyper-parameters out of range, by class name; a class the library does not have yet is left out.
HYPERPARAMETERS = [
    ("Linear", (0, 3), {}, ValueError, "0"),
    ("Linear", (3, 0), {}, ValueError, "0"),
    ("Linear", (2.5, 3), {}, TypeError, "2.5"),
    ("Linear", (True, 3), {}, TypeError, "True"),
    ("LeakyReLU", (-0.1,), {}, ValueError, "-0.1"),
    ("ELU", (-1.0,), {}, ValueError, "-1.0"),
    ("Dropout", (1.0,), {}, ValueError, "1.0"),
    ("Dropout", (-0.1,), {}, ValueError, "-0.1"),
    ("Dropout", (1.5,), {}, ValueError, "1.5"),
    ("Dropout", (float("nan"),), {}, ValueError, "nan"),
    ("Dropout", ("0.5",), {}, TypeError, "'0.5'"),
    ("BatchNormalization", (), {"alpha": 1.5}, ValueError, "1.5"),
    ("BatchNormalization", (), {"alpha": -0.1}, ValueError, "-0.1"),
    ("BatchNormalization", (), {"n_features": 0}, ValueError, "0"),
    ("ChannelwiseScaling", (0,), {}, ValueError, "0"),
    ("ChannelwiseScaling", (2.5,), {}, TypeError, "2.5"),
    ("Conv2d", (0, 4, 3), {}, ValueError, "0"),
    ("Conv2d", (1, 0, 3), {}, ValueError, "0"),
    ("Conv2d", (1, 4, 0), {}, ValueError, "0"),
    ("Conv2d", (1, 4, (3, 0)), {}, ValueError, "0"),
    ("Conv2d", (1, 4, 2.5), {}, TypeError, "2.5"),
    ("Conv2d", (1, 4, 3), {"stride": 0}, ValueError, "0"),
    ("Conv2d", (1, 4, 3), {"stride": -1}, ValueError, "-1"),
    ("Conv2d", (1, 4, 3), {"padding": -1}, ValueError, "-1"),
    ("Conv2d", (1, 4, (3, 3, 3)), {}, ValueError, "(3, 3, 3)"),
    ("MaxPool2d", (0,), {}, ValueError, "0"),
    ("MaxPool2d", (2,), {"stride": 0}, ValueError, "0"),
    ("MaxPool2d", (2,), {"padding": -1}, ValueError, "-1"),
    ("AvgPool2d", (0,), {}, ValueError, "0"),
    ("AvgPool2d", (2,), {"stride": 0}, ValueError, "0"),
    ("AvgPool2d", (2,), {"padding": -1}, ValueError, "-1"),
    ("ClassNLLCriterion", (), {"log_input": "yes"}, TypeError, "'yes'"),
]


def hyperparameter_cases():
    for name, args, kwargs, error_type, got in HYPERPARAMETERS:
        if hasattr(numtorch, name):
            yield pytest.param(getattr(numtorch, name), args, kwargs, error_type, got,
                               id=f"{name}-{args}-{kwargs}")


@pytest.mark.parametrize("cls,args,kwargs,error_type,got", list(hyperparameter_cases()))
def test_hyperparameter_out_of_range(cls, args, kwargs, error_type, got):
    with pytest.raises(error_type) as error:
        cls(*args, **kwargs)
    assert_clear(error.value, [cls.__name__], got)


@pytest.mark.parametrize("seed,error_type", [(-1, ValueError), (0.5, TypeError), ("1", TypeError),
                                             (True, TypeError)])
def test_manual_seed_bad_seed(seed, error_type):
    with pytest.raises(error_type) as error:
        numtorch.manual_seed(seed)
    assert_clear(error.value, ["manual_seed"], "-1" if seed == -1 else type(seed).__name__)


def test_set_rng_state_rejects_garbage():
    with pytest.raises(ValueError) as error:
        numtorch.set_rng_state({"bit_generator": "nonsense"})
    assert_clear(error.value, ["set_rng_state"], "nonsense")


# Optimizer classes, schedulers, data, save/load, fit and evaluate: one row per bad call.

def dense_model():
    numtorch.manual_seed(0)
    return numtorch.Sequential(numtorch.Linear(4, 3))


def samples(n=10):
    rng = np.random.default_rng(0)
    return rng.random((n, 4)).astype(np.float32), np.arange(n) % 3


def saved_model(directory):
    path = directory / "model.npz"
    numtorch.save(dense_model(), path)
    return path


def optimizer_rows():
    from numtorch.optim import SGD, Adam, AdamW, RMSprop

    for cls in (SGD, Adam, AdamW, RMSprop):
        name = cls.__name__
        yield f"{name}-model-list", lambda cls=cls: cls([np.zeros(3)], lr=0.1), TypeError, [name, "list"]
        yield f"{name}-no-parameters", lambda cls=cls: cls(numtorch.ReLU(), lr=0.1), ValueError, \
            [name, "ReLU", "no parameters"]
        yield f"{name}-lr-negative", lambda cls=cls: cls(dense_model(), lr=-1), ValueError, [name, "lr", "-1"]
        yield f"{name}-lr-nan", lambda cls=cls: cls(dense_model(), lr=float("nan")), ValueError, \
            [name, "lr", "nan"]
        yield f"{name}-lr-string", lambda cls=cls: cls(dense_model(), lr="0.1"), TypeError, \
            [name, "lr", "'0.1'"]
        yield f"{name}-weight_decay-negative", lambda cls=cls: cls(dense_model(), lr=0.1, weight_decay=-1), \
            ValueError, [name, "weight_decay", "-1"]
        yield f"{name}-state-None", lambda cls=cls: cls(dense_model(), lr=0.1).load_state_dict(None), \
            TypeError, [name, "load_state_dict", "NoneType"]
        yield f"{name}-state-incomplete", lambda cls=cls: cls(dense_model(), lr=0.1).load_state_dict(
            {"class": cls.__name__}), ValueError, [name, "missing", "hyperparameters"]
        other = Adam if cls is SGD else SGD
        yield f"{name}-state-of-{other.__name__}", lambda cls=cls, other=other: cls(
            dense_model(), lr=0.1).load_state_dict(other(dense_model(), lr=0.1).state_dict()), ValueError, \
            [name, other.__name__]
    yield "SGD-momentum-above-1", lambda: SGD(dense_model(), lr=0.1, momentum=1.5), ValueError, \
        ["SGD", "momentum", "1.5"]
    yield "SGD-nesterov-string", lambda: SGD(dense_model(), lr=0.1, momentum=0.9, nesterov="yes"), \
        TypeError, ["SGD", "nesterov", "str"]
    yield "SGD-nesterov-without-momentum", lambda: SGD(dense_model(), lr=0.1, nesterov=True), ValueError, \
        ["SGD", "momentum > 0", "0.0"]
    yield "Adam-beta1-1", lambda: Adam(dense_model(), betas=(1.0, 0.999)), \
        ValueError, ["Adam", "betas", "1.0"]
    yield "Adam-betas-short", lambda: Adam(dense_model(), betas=(0.9,)), \
        ValueError, ["Adam", "betas", "(0.9,)"]
    yield "Adam-eps-negative", lambda: Adam(dense_model(), eps=-1), ValueError, ["Adam", "eps", "-1"]
    yield "RMSprop-alpha-above-1", lambda: RMSprop(dense_model(), alpha=1.5), ValueError, \
        ["RMSprop", "alpha", "1.5"]
    yield "RMSprop-centered-string", lambda: RMSprop(dense_model(), centered="no"), TypeError, \
        ["RMSprop", "centered", "str"]


def schedule_rows():
    from numtorch.optim import SGD, CosineAnnealingLR, StepLR, clip_grad_norm

    yield "StepLR-step_size-0", lambda: StepLR(SGD(dense_model(), lr=0.1), 0), ValueError, \
        ["StepLR", "step_size", "0"]
    yield "StepLR-gamma-negative", lambda: StepLR(SGD(dense_model(), lr=0.1), 2, gamma=-1), ValueError, \
        ["StepLR", "gamma", "-1"]
    yield "StepLR-not-an-optimizer", lambda: StepLR(dense_model(), 2), TypeError, ["StepLR", "Sequential"]
    yield "CosineAnnealingLR-T_max-0", lambda: CosineAnnealingLR(SGD(dense_model(), lr=0.1), 0), ValueError, \
        ["CosineAnnealingLR", "T_max", "0"]
    yield "StepLR-state-None", lambda: StepLR(SGD(dense_model(), lr=0.1), 2).load_state_dict(None), \
        TypeError, ["StepLR", "NoneType"]
    yield "clip_grad_norm-negative", lambda: clip_grad_norm(dense_model(), -1), ValueError, \
        ["clip_grad_norm", "max_norm", "-1"]
    yield "clip_grad_norm-not-a-module", lambda: clip_grad_norm([np.zeros(2)], 1.0), TypeError, \
        ["clip_grad_norm", "list"]


def data_rows(directory):
    from numtorch.data import Batches, load_digits, load_mnist, load_npz, train_test_split

    X, y = samples()
    yield "Batches-batch_size-0", lambda: Batches(X, y, 0), ValueError, ["Batches", "batch_size", "0"]
    yield "Batches-X-int", lambda: Batches(X.astype(np.int64), y, 2), TypeError, ["Batches", "int64"]
    yield "Batches-X-bool", lambda: Batches(X > 0.5, y, 2), TypeError, ["Batches", "bool"]
    yield "Batches-y-float", lambda: Batches(X, y.astype(np.float32), 2), TypeError, ["Batches", "float32"]
    yield "Batches-mismatched", lambda: Batches(X, y[:5], 2), \
        ValueError, ["Batches", "10 samples", "5 labels"]
    yield "Batches-empty", lambda: Batches(X[:0], y[:0], 2), ValueError, ["Batches", "no samples", "(0, 4)"]
    yield "Batches-labels-negative", lambda: Batches(X, y - 1, 2), ValueError, ["Batches", "-1"]
    yield "Batches-seed-negative", lambda: Batches(X, y, 2, seed=-1), ValueError, ["Batches", "seed", "-1"]
    yield "Batches-shuffle-string", lambda: Batches(X, y, 2, shuffle="yes"), TypeError, ["Batches", "shuffle"]
    yield "Batches-state-None", lambda: Batches(X, y, 2).load_state_dict(None), ValueError, \
        ["Batches.load_state_dict", "NoneType"]
    yield "train_test_split-fraction-0", lambda: train_test_split(X, y, 0), ValueError, \
        ["train_test_split", "test_fraction", "0"]
    yield "train_test_split-fraction-1", lambda: train_test_split(X, y, 1.0), ValueError, \
        ["train_test_split", "test_fraction", "1.0"]
    yield "train_test_split-fraction-nan", lambda: train_test_split(X, y, float("nan")), ValueError, \
        ["train_test_split", "nan"]
    yield "train_test_split-fraction-string", lambda: train_test_split(X, y, "0.2"), TypeError, \
        ["train_test_split", "'0.2'"]
    yield "train_test_split-seed-negative", lambda: train_test_split(X, y, seed=-1), ValueError, \
        ["train_test_split", "seed", "-1"]
    yield "train_test_split-X-int", lambda: train_test_split(X.astype(np.int64), y), TypeError, \
        ["train_test_split", "int64"]
    yield "load_digits-fraction-2", lambda: load_digits(2), ValueError, ["test_fraction", "2"]
    yield "load_mnist-split", lambda: load_mnist(directory, "val"), ValueError, ["load_mnist", "'val'"]
    yield "load_mnist-no-directory", lambda: load_mnist(directory / "absent"), FileNotFoundError, \
        ["load_mnist", "absent"]
    yield "load_mnist-no-files", lambda: load_mnist(directory), \
        FileNotFoundError, ["load_mnist", "train-images"]
    bad_npz = {
        "X-nan": ({"X": np.full((3, 2), np.nan), "y": np.zeros(3, np.int64)}, ValueError, ["nan"]),
        "y-float": ({"X": np.zeros((3, 2)), "y": np.zeros(3)}, TypeError, ["float64"]),
        "y-negative": ({"X": np.zeros((3, 2)), "y": np.array([0, -1, 2])}, ValueError, ["-1"]),
        "empty": ({"X": np.zeros((0, 2)), "y": np.zeros(0, np.int64)}, ValueError, ["no samples"]),
        "X-1d": ({"X": np.zeros(3), "y": np.zeros(3, np.int64)}, TypeError, ["(3,)"]),
        "X-complex": ({"X": np.zeros((3, 2), complex), "y": np.zeros(3, np.int64)}, ValueError, ["complex"]),
        "y-missing": ({"X": np.zeros((3, 2))}, ValueError, ["'y'"]),
        "mismatched": ({"X": np.zeros((3, 2)), "y": np.zeros(2, np.int64)}, ValueError, ["3 samples"]),
    }
    for kind, (arrays, error_type, got) in bad_npz.items():
        def load(arrays=arrays, kind=kind):
            np.savez(directory / f"{kind}.npz", **arrays)
            return load_npz(directory / f"{kind}.npz")

        yield f"load_npz-{kind}", load, error_type, [f"{kind}.npz", *got]


def io_rows(directory):
    from numtorch.io import load_checkpoint, load_weights, save_checkpoint
    from numtorch.optim import SGD

    model = dense_model()
    yield "save-not-a-module", lambda: numtorch.save([1], directory / "m.npz"), TypeError, ["save", "list"]
    yield "save-input_shape-string", lambda: numtorch.save(model, directory / "m.npz", input_shape="ab"), \
        TypeError, ["save", "input_shape", "str"]
    yield "save-input_shape-negative", lambda: numtorch.save(model, directory / "m.npz", input_shape=(-1,)), \
        ValueError, ["save", "input_shape", "-1"]
    yield "save-missing-folder", lambda: numtorch.save(model, directory / "absent" / "m.npz"), \
        FileNotFoundError, ["absent"]
    yield "load-missing", lambda: numtorch.load(directory / "absent.npz"), FileNotFoundError, ["absent.npz"]
    yield "load_weights-not-a-module", lambda: load_weights([1], saved_model(directory)), TypeError, \
        ["load_weights", "list"]
    yield "load_weights-other-architecture", lambda: load_weights(
        numtorch.Sequential(numtorch.Linear(4, 2)), saved_model(directory)), ValueError, ["model.npz"]
    yield "load_checkpoint-of-a-model-file", lambda: load_checkpoint(
        saved_model(directory), model, SGD(model, lr=0.1)), ValueError, ["model.npz", "not a checkpoint"]
    yield "save_checkpoint-epoch-string", lambda: save_checkpoint(
        directory / "c.npz", model, SGD(model, lr=0.1), "x"), TypeError, ["save_checkpoint", "epoch", "'x'"]
    yield "save_checkpoint-no-optimizer", lambda: save_checkpoint(directory / "c.npz", model, None, 1), \
        TypeError, ["save_checkpoint", "NoneType"]
    yield "save_checkpoint-state-not-json", lambda: save_checkpoint(
        directory / "c.npz", model, SGD(model, lr=0.1), 1, extra=object()), TypeError, \
        ["save_checkpoint", "JSON"]


def train_rows():
    from numtorch.optim import SGD
    from numtorch.train import evaluate, fit

    X, y = samples()

    def run(**changes):
        model = dense_model()
        arguments = dict(model=model, criterion=numtorch.CrossEntropyCriterion(),
                         optimizer=SGD(model, lr=0.1), train=(X, y), epochs=1, batch_size=4, progress=False)
        arguments.update(changes)
        return fit(**arguments)

    yield "fit-model-list", lambda: run(model=[1]), TypeError, ["fit", "list"]
    yield "fit-criterion-a-module", lambda: run(criterion=numtorch.ReLU()), TypeError, ["fit", "ReLU"]
    yield "fit-optimizer-of-another-model", lambda: run(optimizer=SGD(dense_model(), lr=0.1)), ValueError, \
        ["fit", "another model"]
    yield "fit-epochs-negative", lambda: run(epochs=-1), ValueError, ["fit", "epochs", "-1"]
    yield "fit-batch_size-0", lambda: run(batch_size=0), ValueError, ["batch_size", "0"]
    yield "fit-seed-negative", lambda: run(seed=-1), ValueError, ["seed", "-1"]
    yield "fit-wrong-features", lambda: run(train=(np.zeros((10, 5), np.float32), y)), ValueError, \
        ["Linear(4 -> 3)", "(4, 5)"]
    yield "fit-X-int", lambda: run(train=(X.astype(np.int64), y)), TypeError, ["int64"]
    yield "fit-X-float16", lambda: run(train=(X.astype(np.float16), y)), TypeError, ["float16"]
    yield "fit-labels-out-of-range", lambda: run(train=(X, y + 5)), ValueError, ["CrossEntropyCriterion", "7"]
    yield "fit-empty", lambda: run(train=(X[:0], y[:0])), ValueError, ["no samples"]
    yield "fit-val-mismatched", lambda: run(val=(X, y[:3])), ValueError, ["val", "3 labels"]
    yield "fit-train-not-a-pair", lambda: run(train=X), TypeError, ["fit", "train", "ndarray"]
    yield "fit-resume-without-checkpoint", lambda: run(resume=True), ValueError, ["fit", "resume"]
    yield "evaluate-mismatched", lambda: evaluate(dense_model(), X, y[:3]), \
        ValueError, ["evaluate", "3 labels"]
    yield "evaluate-labels-negative", lambda: evaluate(dense_model(), X, y - 1), \
        ValueError, ["evaluate", "-1"]
    yield "evaluate-batch_size-0", lambda: evaluate(dense_model(), X, y, batch_size=0), ValueError, \
        ["evaluate", "batch_size", "0"]
    yield "evaluate-empty", lambda: evaluate(dense_model(), X[:0], y[:0]), \
        ValueError, ["evaluate", "no samples"]


def entry_point_rows(directory):
    yield from optimizer_rows()
    yield from schedule_rows()
    yield from data_rows(directory)
    yield from io_rows(directory)
    yield from train_rows()


ENTRY_POINT_IDS = [row[0] for row in entry_point_rows(None)]


@pytest.mark.parametrize("kind", ENTRY_POINT_IDS)
def test_entry_point_bad_call(tmp_path, kind):
    _, call, error_type, got = next(row for row in entry_point_rows(tmp_path) if row[0] == kind)
    with pytest.raises(error_type) as error:
        call()
    message = str(error.value)
    for text in got:
        assert text in message, f"{kind}: message {message!r} does not show {text!r}"


# The command line: one line on stderr naming the problem, a non-zero exit status, no traceback.

def cli_files(directory):
    np.savez(directory / "negative.npz", X=np.zeros((10, 4), np.float32), y=-np.ones(10, np.int64))
    np.savez(directory / "nan.npz", X=np.full((10, 4), np.nan), y=np.zeros(10, np.int64))
    np.savez(directory / "objects.npz", X=np.array([{}], dtype=object), y=np.zeros(1, np.int64))
    np.savez(directory / "one.npz", X=np.zeros((1, 4), np.float32), y=np.zeros(1, np.int64))
    (directory / "junk.npz").write_bytes(b"junk")
    numtorch.manual_seed(0)
    numtorch.save(numtorch.Sequential(numtorch.Linear(3, 2)), directory / "three.npz", input_shape=(3,))


CLI_CASES = [
    (["train", "--epochs", "-1"], 2, "'-1'"),
    (["train", "--lr", "-0.1"], 2, "'-0.1'"),
    (["train", "--lr", "nan"], 2, "'nan'"),
    (["train", "--lr", "abc"], 2, "'abc'"),
    (["train", "--batch-size", "0"], 2, "'0'"),
    (["train", "--hidden", "0"], 2, "'0'"),
    (["train", "--hidden", "64,x"], 2, "'64,x'"),
    (["train", "--seed", "-3"], 2, "'-3'"),
    (["train", "--model", "transformer"], 2, "'transformer'"),
    (["train", "--optimizer", "lbfgs"], 2, "'lbfgs'"),
    (["train", "--data", "bogus"], 1, "'bogus'"),
    (["train", "--data", "{tmp}/absent.npz"], 1, "absent.npz"),
    (["train", "--data", "mnist:{tmp}/absent"], 1, "absent"),
    (["train", "--data", "mnist:{tmp}"], 1, "no MNIST"),
    (["train", "--data", "{tmp}/negative.npz"], 1, "-1"),
    (["train", "--data", "{tmp}/nan.npz"], 1, "nan"),
    (["train", "--data", "{tmp}/objects.npz"], 1, "objects.npz"),
    (["train", "--data", "{tmp}/junk.npz"], 1, "junk.npz"),
    (["train", "--data", "{tmp}/one.npz"], 1, "1 samples"),
    (["train", "--resume", "--out", "{tmp}/run"], 1, "checkpoint"),
    (["evaluate", "{tmp}/absent.npz"], 1, "absent.npz"),
    (["evaluate", "{tmp}/junk.npz"], 1, "junk.npz"),
    (["evaluate", "{tmp}/three.npz"], 1, "(3,)"),
    (["summary", "{tmp}/junk.npz"], 1, "junk.npz"),
    (["summary"], 2, "MODEL.npz"),
    (["frobnicate"], 2, "'frobnicate'"),
    ([], 2, "COMMAND"),
]


@pytest.mark.parametrize("argv,status,got", CLI_CASES,
                         ids=[" ".join(case[0]) or "no-command" for case in CLI_CASES])
def test_cli_bad_invocation(tmp_path, capsys, argv, status, got):
    from numtorch import cli

    cli_files(tmp_path)
    argv = [arg.replace("{tmp}", str(tmp_path)) for arg in argv]
    try:
        result = cli.main(argv)
    except SystemExit as exit:
        result = exit.code
    assert result == status
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got {lines}"
    assert lines[0].startswith("numtorch") and "error" in lines[0] and "Traceback" not in lines[0]
    assert got in lines[0], f"{lines[0]!r} does not show {got!r}"
