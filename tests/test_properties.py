"""Properties every row of the module table must have, for random shapes and values.

For every module and criterion in ``module_table.py`` (so a new row is covered
without touching this file), over random valid shapes, float32 and float64
inputs and parameters, and inputs up to magnitude 1e4:

- the output has PyTorch's shape (the row's reference) and the input's dtype;
- ``gradInput`` has the input's shape and dtype;
- ``forward`` and ``backward`` never modify their arguments;
- an array ``forward`` returned is not changed by a later forward or backward;
- outputs, input gradients and parameter gradients are finite, with no
  overflow, invalid-operation or division-by-zero floating-point event
  (NumPy raises on them here; underflow to 0 is harmless and allowed).

A criterion whose input (or target) the row builds within [0, 1] takes
probabilities there: its extremes are exact 0s and 1s rather than 1e4 (no 0s
for a row marked ``unstable_at_zero``).
"""

import contextlib
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import numtorch
from harness import (
    CriterionCase,
    ModuleCase,
    as_float,
    assert_unchanged,
    copy_data,
    dtypes_of,
    import_torch,
    random_like,
    set_mode,
    to_torch,
)
from module_table import CRITERIONS, MODULES
from numtorch._table import leaves, map_table, shape_of
from numtorch.module import flatten

torch = import_torch()

MAX_MAGNITUDE = 1e4
DTYPES = st.sampled_from([np.float32, np.float64])
SETTINGS = settings(max_examples=25, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow])


@contextlib.contextmanager
def strict_floats():
    """Overflow, invalid operations and division by zero raise; so does any RuntimeWarning."""
    with warnings.catch_warnings(), np.errstate(over="raise", invalid="raise", divide="raise",
                                                under="ignore"):
        warnings.simplefilter("error", RuntimeWarning)
        yield


def magnitudes():
    """The largest |x| of an input: exactly 1e4, or anything from 1e-3 to 1e4."""
    return st.one_of(st.just(MAX_MAGNITUDE), st.floats(1e-3, MAX_MAGNITUDE))


def rescale(x, magnitude, dtype):
    """``x`` scaled so its largest |element| is ``magnitude``, in ``dtype`` (a table: every array)."""
    if isinstance(x, list):
        return [rescale(entry, magnitude, dtype) for entry in x]
    x = np.asarray(x, dtype=np.float64)
    peak = np.max(np.abs(x)) if x.size else 0.0
    if peak > 0:
        x = x * (magnitude / peak)
    return x.astype(dtype)


def is_probability(array):
    return isinstance(array, np.ndarray) and array.dtype.kind == "f" and array.size > 0 \
        and array.min() >= 0 and array.max() <= 1


def push_to_extremes(p, rng, dtype, zero_allowed=True):
    """Probabilities, about half of them set exactly to 0 or 1 (only to 1 without ``zero_allowed``)."""
    p = np.array(p, dtype=np.float64)
    mask = rng.random(p.shape) < 0.5
    p[mask] = np.round(p[mask]) if zero_allowed else 1.0
    return p.astype(dtype)


def assert_finite(data, what):
    for array in leaves(data):
        assert np.all(np.isfinite(array)), f"{what} has non-finite values: {array}"


def module_params():
    return [
        pytest.param(case, mode, id=f"{case.name}-{mode}", marks=case.marks)
        for case in MODULES
        for mode in case.modes
    ]


def torch_copies(module):
    """The module's parameters and buffers as float32 tensors, for the row's reference."""
    params = [torch.tensor(np.asarray(p, dtype=np.float32)) for p in flatten(module.getParameters())]
    buffers = [torch.tensor(np.asarray(b, dtype=np.float32)) for b in flatten(module.getBuffers())]
    return params, buffers


def reference_shape(case, module, x, params, buffers):
    """The output shape PyTorch gives for the row's reference on ``x`` (called after forward:
    a reference may read what forward drew, such as Dropout's mask)."""
    with torch.no_grad():
        expected = case.reference(module, to_torch(torch, as_float(x)), params, buffers)
        return map_table(lambda tensor: tuple(tensor.shape), expected)


@pytest.mark.parametrize("case,mode", module_params())
@SETTINGS
@given(seed=st.integers(0, 2**32 - 1), batch=st.integers(1, 6), dtype=DTYPES, param_dtype=DTYPES,
       magnitude=magnitudes())
def test_module_properties(case, mode, seed, batch, dtype, param_dtype, magnitude):
    check_module_properties(case, mode, seed, batch, dtype, param_dtype, magnitude)


def check_module_properties(case, mode, seed, batch, dtype, param_dtype, magnitude):
    rng = np.random.default_rng(seed)
    numtorch.manual_seed(seed)
    module, x = case.build(rng, batch)
    module.astype(param_dtype)
    set_mode(module, mode)
    x = rescale(x, magnitude, dtype)
    x_before = copy_data(x)
    params, buffers = torch_copies(module)

    with strict_floats():
        output = module.forward(x)
    expected_shape = reference_shape(case, module, x, params, buffers)
    assert_unchanged(x, x_before, f"{case}: forward modified its input")
    assert shape_of(output) == expected_shape, (
        f"{case}: output shape {shape_of(output)}, PyTorch {expected_shape}")
    assert dtypes_of(output) == {np.dtype(dtype).name}, (
        f"{case}: output dtype {', '.join(sorted(dtypes_of(output)))} for {np.dtype(dtype)} input")
    assert_finite(output, f"{case} output")
    output_kept = copy_data(output)

    grad_output = random_like(rng, output, dtype)
    grad_output_before = copy_data(grad_output)
    module.zeroGradParameters()
    with strict_floats():
        grad_input = module.backward(x, grad_output)
    assert_unchanged(x, x_before, f"{case}: backward modified its input")
    assert_unchanged(grad_output, grad_output_before, f"{case}: backward modified gradOutput")
    assert shape_of(grad_input) == shape_of(x), (
        f"{case}: gradInput shape {shape_of(grad_input)}, input {shape_of(x)}")
    assert dtypes_of(grad_input) == {np.dtype(dtype).name}, (
        f"{case}: gradInput dtype {dtypes_of(grad_input)}, input {np.dtype(dtype)}")
    assert_finite(grad_input, f"{case} gradInput")
    for i, grad in enumerate(flatten(module.getGradParameters())):
        assert_finite(grad, f"{case} parameter gradient {i}")
    assert_unchanged(output, output_kept, f"{case}: backward changed the array forward returned")

    # A second call on other values of the same shape must leave the first call's output alone.
    x2 = map_table(lambda array: rescale(rng.standard_normal(array.shape), magnitude, dtype), x)
    with strict_floats():
        output2 = module.forward(x2)
        module.backward(x2, random_like(rng, output2, dtype))
    assert not {id(a) for a in leaves(output2)} & {id(a) for a in leaves(output)}, (
        f"{case}: forward returned the same array object twice")
    assert_unchanged(output, output_kept, f"{case}: a later call changed the array forward returned")


@pytest.mark.parametrize("case", CRITERIONS, ids=str)
@SETTINGS
@given(seed=st.integers(0, 2**32 - 1), batch=st.integers(1, 6), dtype=DTYPES, magnitude=magnitudes())
def test_criterion_properties(case, seed, batch, dtype, magnitude):
    check_criterion_properties(case, seed, batch, dtype, magnitude)


def check_criterion_properties(case, seed, batch, dtype, magnitude):
    rng = np.random.default_rng(seed)
    criterion, x, target = case.build(rng, batch)
    if is_probability(x):
        x = push_to_extremes(x, rng, dtype, zero_allowed=not case.unstable_at_zero)
    else:
        x = rescale(x, magnitude, dtype)
    if isinstance(target, np.ndarray) and target.dtype.kind == "f":
        target = target.astype(dtype) if is_probability(target) else rescale(target, magnitude, dtype)
    x_before, target_before = x.copy(), np.copy(target)

    with strict_floats():
        loss = criterion.forward(x, target)
        grad_input = criterion.backward(x, target)
    assert isinstance(loss, float), f"{case}: loss is {type(loss).__name__}, not float"
    assert np.isfinite(loss), f"{case}: loss {loss} for finite input"
    np.testing.assert_array_equal(x, x_before, err_msg=f"{case}: modified its input")
    np.testing.assert_array_equal(target, target_before, err_msg=f"{case}: modified its target")
    assert grad_input.shape == x.shape, f"{case}: gradInput shape {grad_input.shape}, input {x.shape}"
    assert grad_input.dtype == dtype, f"{case}: gradInput dtype {grad_input.dtype}, input {np.dtype(dtype)}"
    assert_finite(grad_input, f"{case} gradInput")
    kept = grad_input.copy()
    with strict_floats():
        criterion.forward(x, target)
        criterion.backward(x, target)
    np.testing.assert_array_equal(grad_input, kept,
                                  err_msg=f"{case}: a later call changed the gradInput it returned")


# The checks above must be able to fail: each broken module below is caught.

class NaiveSoftMax(numtorch.SoftMax):
    def updateOutput(self, input):
        self.output = np.exp(input) / np.exp(input).sum(axis=1, keepdims=True)
        return self.output


class InPlaceReLU(numtorch.ReLU):
    def updateOutput(self, input):
        np.maximum(input, 0, out=input)
        self.output = input.copy()
        return self.output


class ReusedBufferReLU(numtorch.ReLU):
    def updateOutput(self, input):
        if self.output is None or self.output.shape != input.shape or self.output.dtype != input.dtype:
            self.output = np.empty_like(input)
        np.maximum(input, 0, out=self.output)
        return self.output


class Float64ReLU(numtorch.ReLU):
    def updateOutput(self, input):
        self.output = np.maximum(input, 0).astype(np.float64)
        return self.output


class NaiveCrossEntropy(numtorch.CrossEntropyCriterion):
    def updateOutput(self, input, target):
        p = np.exp(input) / np.exp(input).sum(axis=1, keepdims=True)
        return -np.log(p[np.arange(len(target)), target]).mean()


def broken_case(make, reference):
    return ModuleCase(make.__name__, lambda rng, n: (make(), rng.standard_normal((n, 5))), reference)


@pytest.mark.parametrize("case,error,match", [
    (broken_case(NaiveSoftMax, lambda m, x, p, b: x.softmax(dim=1)), FloatingPointError, "overflow"),
    (broken_case(InPlaceReLU, lambda m, x, p, b: x.relu()), AssertionError, "modified its input"),
    (broken_case(ReusedBufferReLU, lambda m, x, p, b: x.relu()), AssertionError, "same array object"),
    (broken_case(Float64ReLU, lambda m, x, p, b: x.relu()), AssertionError, "output dtype float64"),
], ids=["overflow", "in-place", "reused-output", "dtype"])
def test_module_properties_catch_broken_modules(case, error, match):
    with pytest.raises(error, match=match):
        check_module_properties(case, "train", seed=0, batch=4, dtype=np.float32,
                                param_dtype=np.float32, magnitude=MAX_MAGNITUDE)


def test_criterion_properties_catch_overflow():
    case = CriterionCase("NaiveCrossEntropy", lambda rng, n: (
        NaiveCrossEntropy(), rng.standard_normal((n, 4)), rng.integers(0, 4, size=n)), None)
    with pytest.raises(FloatingPointError, match="overflow"):
        check_criterion_properties(case, seed=0, batch=4, dtype=np.float32, magnitude=MAX_MAGNITUDE)
