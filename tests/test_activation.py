"""Element-wise activations beyond the harness: extremes, hyper-parameters, reprs."""

import warnings

import numpy as np
import pytest

import numtorch as nt

ACTIVATIONS = [nt.ReLU, nt.LeakyReLU, nt.ELU, nt.SoftPlus, nt.Sigmoid, nt.Tanh, nt.Identity]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("make", ACTIVATIONS, ids=lambda m: m.__name__)
def test_finite_without_warnings_at_magnitude_1e4(make, dtype):
    x = np.array([[-1e4, -50.0, -1.0, 0.0, 1.0, 50.0, 1e4]], dtype=dtype)
    module = make()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        output = module.forward(x)
        grad = module.backward(x, np.ones_like(x))
    assert np.all(np.isfinite(output)) and np.all(np.isfinite(grad))
    assert output.dtype == dtype and grad.dtype == dtype


def test_softplus_is_linear_for_large_inputs_and_exact_near_zero():
    x = np.array([[25.0, 1e4, 0.0, -30.0]])
    softplus = nt.SoftPlus()
    output = softplus.forward(x)
    assert output[0, 0] == 25.0 and output[0, 1] == 1e4
    assert output[0, 2] == pytest.approx(np.log(2))
    assert output[0, 3] == pytest.approx(np.exp(-30.0), rel=1e-9)
    np.testing.assert_array_equal(softplus.backward(x, np.ones_like(x))[0, :2], [1.0, 1.0])


def test_sigmoid_saturates_exactly():
    output = nt.Sigmoid().forward(np.array([[-1e4, 1e4]]))
    np.testing.assert_array_equal(output, [[0.0, 1.0]])


@pytest.mark.parametrize("make,expected", [
    (nt.LeakyReLU, "LeakyReLU(slope=0.03)"),
    (lambda: nt.LeakyReLU(0.2), "LeakyReLU(slope=0.2)"),
    (nt.ELU, "ELU(alpha=1)"),
    (nt.ReLU, "ReLU"),
    (nt.SoftPlus, "SoftPlus"),
])
def test_repr_shows_hyper_parameters(make, expected):
    assert repr(make()) == expected


def test_leaky_relu_default_slope_is_the_notebooks():
    output = nt.LeakyReLU().forward(np.array([[-2.0, 3.0]]))
    np.testing.assert_allclose(output, [[-0.06, 3.0]])


@pytest.mark.parametrize("make,bad,error,message", [
    (nt.LeakyReLU, -0.1, ValueError, r"LeakyReLU: expected slope in \[0, inf\], got -0.1"),
    (nt.LeakyReLU, "0.1", TypeError, "LeakyReLU: expected slope as a number, got str"),
    (nt.ELU, float("inf"), ValueError, "ELU: expected alpha in"),
    (nt.ELU, True, TypeError, "ELU: expected alpha as a number, got bool"),
])
def test_bad_hyper_parameters(make, bad, error, message):
    with pytest.raises(error, match=message):
        make(bad)


@pytest.mark.parametrize("make", ACTIVATIONS, ids=lambda m: m.__name__)
def test_outputs_are_not_reused_between_calls(make):
    module = make()
    x = np.linspace(-2, 2, 12, dtype=np.float32).reshape(3, 4)
    first = module.forward(x)
    kept = first.copy()
    assert first is not x
    module.forward(-x)
    np.testing.assert_array_equal(first, kept)


def test_relu_follows_changing_shapes_and_dtypes():
    relu = nt.ReLU()
    rng = np.random.default_rng(0)
    for shape, dtype in [((4, 3), np.float32), ((2, 3), np.float64), ((2, 5, 2), np.float32),
                         ((1, 3), np.float32)]:
        x = rng.standard_normal(shape).astype(dtype)
        x[0, 0] = -np.inf
        y = relu.forward(x)
        assert y.dtype == dtype and y.shape == shape
        np.testing.assert_array_equal(y, np.where(x > 0, x, 0))


@pytest.mark.parametrize("layout", ["contiguous", "channels_last", "strided", "fortran"])
def test_relu_keeps_the_input_memory_order_and_values_in_every_layout(layout):
    rng = np.random.default_rng(0)
    base = rng.standard_normal((3, 5, 6, 4)).astype(np.float32)
    x = {
        "contiguous": base.transpose(0, 3, 1, 2).copy(),
        "channels_last": base.transpose(0, 3, 1, 2),
        "strided": base[:, ::2, 1:, :].transpose(0, 3, 1, 2),
        "fortran": np.asfortranarray(base.transpose(0, 3, 1, 2)),
    }[layout]
    before = x.copy()
    relu = nt.ReLU()
    output = relu.forward(x)
    np.testing.assert_array_equal(output, np.maximum(before, 0))
    np.testing.assert_array_equal(x, before)
    if layout != "strided":
        assert output.strides == x.strides
    np.testing.assert_array_equal(relu.backward(x, np.ones_like(x)), (before > 0).astype(np.float32))
