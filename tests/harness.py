"""The one shared harness every module and criterion goes through.

A row of the table in ``module_table.py`` says how to build a numtorch module
with a random shape and how PyTorch computes the same function. The harness
then checks, for that row:

- against PyTorch in float32: output, input gradient, every parameter
  gradient and every buffer (moving statistics) after the step;
- by central finite differences in float64 (``numtorch.gradcheck``);
- the contract: the input is not modified, gradients accumulate in place into
  the same arrays, ``zeroGradParameters`` zeroes them.
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
