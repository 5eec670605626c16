"""The one shared harness every module and criterion goes through.

A row of the table in ``module_table.py`` says how to build a numtorch module
with a random shape and how PyTorch computes the same function. The harness
then checks, for that row:

- against PyTorch in float32: output, input gradient, every parameter
  gradient and every buffer (moving statistics) after the step;
- by central finite differences in float64 (``numtorch.gradcheck``);
- the contract: the input is not modified, gradients accumulate in place into
  the same arrays, ``zeroGradParameters`` zeroes them;
- float64 data into the float32 module, and non-contiguous (strided) views.
"""

import os
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pytest

import numtorch
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
    expected = np.asarray(expected)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    scale = max(1.0, float(np.max(np.abs(expected)))) if expected.size else 1.0
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol * scale, err_msg=what)


def set_mode(module, mode):
    module.train() if mode == "train" else module.evaluate()


def check_module_against_torch(torch, case, seed, batch, mode):
    rng = np.random.default_rng(seed)
    numtorch.manual_seed(seed)
    module, x = case.build(rng, batch)
    x = np.asarray(x, dtype=np.float32)
    set_mode(module, mode)
    params = [torch.tensor(p, requires_grad=True) for p in flatten(module.getParameters())]
    buffers = [torch.tensor(b) for b in flatten(module.getBuffers())]
    assert all(p.dtype == np.float32 for p in flatten(module.getParameters()))

    x_before = x.copy()
    output = module.forward(x)
    np.testing.assert_array_equal(x, x_before, err_msg=f"{case}: forward modified its input")
    assert output.dtype == np.float32, f"{case}: output dtype {output.dtype}, input float32"

    tx = torch.tensor(x, requires_grad=True)
    expected = case.reference(module, tx, params, buffers)
    assert_close(output, expected.detach().numpy(), case.rtol, case.atol, f"{case} output")
    for ours, theirs in zip(flatten(module.getBuffers()), buffers):
        assert_close(ours, theirs.numpy(), case.rtol, case.atol, f"{case} buffer")

    grad_output = rng.standard_normal(output.shape).astype(np.float32)
    grads = flatten(module.getGradParameters())
    module.zeroGradParameters()
    grad_input = module.backward(x, grad_output).copy()
    np.testing.assert_array_equal(x, x_before, err_msg=f"{case}: backward modified its input")
    expected.backward(torch.tensor(grad_output))
    assert grad_input.dtype == np.float32
    assert_close(grad_input, tx.grad.numpy(), case.rtol, case.atol, f"{case} gradInput")
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
    error = numtorch.gradcheck(module, np.asarray(x, dtype=np.float64))
    assert error <= 1e-6, f"{case} ({mode}, batch {batch}): finite-difference error {error:.3g}"


def strided_view(array):
    """A non-contiguous view (every axis strided) holding ``array``'s values."""
    holder = np.zeros((*array.shape, 2), dtype=array.dtype)
    holder[..., 0] = array
    view = holder[..., 0]
    assert not view.flags.c_contiguous and not view.flags.f_contiguous
    return view


def run_module(case, seed, batch, mode, convert):
    """Build the row's float32 module, run forward and backward on ``convert(x)``, ``convert(gradOutput)``.

    Returns the input fed, output, gradInput and copies of the parameter gradients.
    """
    rng = np.random.default_rng(seed)
    numtorch.manual_seed(seed)
    module, x = case.build(rng, batch)
    set_mode(module, mode)
    x = convert(np.asarray(x, dtype=np.float32))
    x_before = x.copy()
    numtorch.manual_seed(seed)
    output = module.forward(x)
    grad_output = convert(rng.standard_normal(output.shape).astype(np.float32))
    module.zeroGradParameters()
    grad_input = module.backward(x, grad_output)
    np.testing.assert_array_equal(x, x_before, err_msg=f"{case}: forward/backward modified its input")
    assert all(p.dtype == np.float32 for p in flatten(module.getParameters()))
    return x, output.copy(), grad_input.copy(), [g.copy() for g in flatten(module.getGradParameters())]


def check_module_input_dtype_and_layout(case, mode, seed=0, batch=3):
    """A float32 module fed (a) float64 data and (b) non-contiguous views.

    (a) The output and gradInput are float64 (outputs keep the input's dtype)
    and agree with the float32 run; the parameter gradients stay float32.
    (b) Strided views of the input and gradOutput give what the contiguous
    arrays give.
    """
    _, output, grad_input, grads = run_module(case, seed, batch, mode, lambda a: a)
    _, output64, grad_input64, grads64 = run_module(case, seed, batch, mode, lambda a: a.astype(np.float64))
    assert output64.dtype == np.float64, f"{case}: output dtype {output64.dtype}, input float64"
    assert grad_input64.dtype == np.float64, f"{case}: gradInput dtype {grad_input64.dtype}, input float64"
    assert_close(output64, output, case.rtol, case.atol, f"{case} float64 input: output")
    assert_close(grad_input64, grad_input, case.rtol, case.atol, f"{case} float64 input: gradInput")
    for i, (ours, theirs) in enumerate(zip(grads64, grads)):
        assert ours.dtype == np.float32, f"{case}: parameter gradient {i} became {ours.dtype}"
        assert_close(ours, theirs, case.rtol, case.atol, f"{case} float64 input: parameter gradient {i}")

    x, output_s, grad_input_s, grads_s = run_module(case, seed, batch, mode, strided_view)
    assert not x.flags.c_contiguous
    assert_close(output_s, output, 1e-6, 1e-7, f"{case} strided input: output")
    assert_close(grad_input_s, grad_input, 1e-6, 1e-7, f"{case} strided input: gradInput")
    for i, (ours, theirs) in enumerate(zip(grads_s, grads)):
        assert_close(ours, theirs, 1e-6, 1e-7, f"{case} strided input: parameter gradient {i}")


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
