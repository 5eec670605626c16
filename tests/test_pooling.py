"""MaxPool2d and AvgPool2d beyond the shared table: ties, NaN, arguments and errors.

Output and gradients against PyTorch and by finite differences: the pooling
rows of ``module_table.py``.
"""

import numpy as np
import pytest

import numtorch as nt
from harness import ModuleCase, check_module_against_torch, import_torch


def integer_image(rng, batch, channels, height, width):
    """Small integers as floats: many windows hold their maximum more than once."""
    return rng.integers(-2, 3, size=(batch, channels, height, width)).astype(np.float64)


@pytest.mark.parametrize("kernel,stride,padding,size", [
    (2, None, 0, (6, 8)),
    (3, None, 0, (6, 9)),
    ((2, 3), None, 0, (4, 9)),
    ((3, 1), None, 0, (6, 5)),
    (3, 2, 1, (7, 6)),
    ((2, 3), (1, 2), (1, 0), (5, 7)),
])
def test_max_pool_ties_send_the_gradient_to_the_first_maximum_as_torch(kernel, stride, padding, size):
    torch = import_torch()
    f = torch.nn.functional
    case = ModuleCase(
        "MaxPool2d/ties",
        lambda rng, batch: (nt.MaxPool2d(kernel, stride, padding), integer_image(rng, batch, 3, *size)),
        lambda m, x, p, b: f.max_pool2d(x, m.kernel_size, m.stride, m.padding),
    )
    for seed, batch in enumerate((1, 4)):
        check_module_against_torch(torch, case, seed, batch, "train")


def test_max_pool_tie_gradient_goes_to_one_position_per_window():
    x = np.ones((1, 1, 2, 2), np.float32)
    pool = nt.MaxPool2d(2)
    pool.forward(x)
    grad = pool.backward(x, np.ones((1, 1, 1, 1), np.float32))
    np.testing.assert_array_equal(grad[0, 0], [[1, 0], [0, 0]])


@pytest.mark.parametrize("stride", [None, 1])
def test_max_pool_propagates_nan_as_torch(stride):
    torch = import_torch()
    x = np.arange(32, dtype=np.float32).reshape(1, 2, 4, 4)
    x[0, 0, 1, 2] = x[0, 1, 3, 3] = np.nan
    ours = nt.MaxPool2d(2, stride).forward(x)
    theirs = torch.nn.functional.max_pool2d(torch.tensor(x), 2, stride).numpy()
    np.testing.assert_array_equal(ours, theirs)


@pytest.mark.parametrize("layer", [nt.MaxPool2d, nt.AvgPool2d])
def test_stride_defaults_to_the_kernel_and_repr_shows_the_arguments(layer):
    name = layer.__name__
    assert layer(3).stride == (3, 3)
    assert repr(layer(2)) == f"{name}(kernel_size=(2, 2))"
    assert repr(layer((3, 2), 1, (1, 0))) == f"{name}(kernel_size=(3, 2), stride=(1, 1), padding=(1, 0))"


@pytest.mark.parametrize("layer", [nt.MaxPool2d, nt.AvgPool2d])
@pytest.mark.parametrize("kwargs,error,message", [
    (dict(kernel_size=0), ValueError, "kernel_size >= 1"),
    (dict(kernel_size=2, stride=(1, 0)), ValueError, "stride >= 1"),
    (dict(kernel_size=2, padding=-1), ValueError, "padding >= 0"),
    (dict(kernel_size=3, padding=2), ValueError,
     r"padding at most half the kernel size \(3, 3\), got \(2, 2\)"),
    (dict(kernel_size=1.5), TypeError, "kernel_size as an int or a pair"),
])
def test_bad_hyper_parameters(layer, kwargs, error, message):
    with pytest.raises(error, match=f"{layer.__name__}: expected {message}"):
        layer(**kwargs)


@pytest.mark.parametrize("layer", [nt.MaxPool2d, nt.AvgPool2d])
def test_shapes_that_do_not_fit_name_the_layer_and_shapes(layer):
    name = layer.__name__
    with pytest.raises(ValueError, match=rf"{name}\(kernel_size=\(2, 2\)\): "
                                         r"expected input \(N, \*, \*, \*\), got \(2, 4, 4\)"):
        layer(2).forward(np.zeros((2, 4, 4), np.float32))
    with pytest.raises(ValueError, match=rf"{name}\(kernel_size=\(3, 3\)\): kernel \(3, 3\) larger than "
                                         r"the padded input \(2, 5\) of input \(1, 1, 2, 5\); "
                                         r"expected H >= 3 and W >= 3"):
        layer(3).forward(np.zeros((1, 1, 2, 5), np.float32))


@pytest.mark.parametrize("layer", [nt.MaxPool2d, nt.AvgPool2d])
@pytest.mark.parametrize("kwargs", [dict(kernel_size=2), dict(kernel_size=3, stride=2, padding=1)])
def test_earlier_results_are_not_changed_by_later_calls(layer, kwargs):
    rng = np.random.default_rng(0)
    pool = layer(**kwargs)
    x1, x2 = (rng.standard_normal((2, 3, 6, 8)).astype(np.float32) for _ in range(2))
    out1 = pool.forward(x1)
    grad1 = pool.backward(x1, rng.standard_normal(out1.shape).astype(np.float32))
    kept_out, kept_grad = out1.copy(), grad1.copy()
    out2 = pool.forward(x2)
    pool.backward(x2, rng.standard_normal(out2.shape).astype(np.float32))
    np.testing.assert_array_equal(out1, kept_out)
    np.testing.assert_array_equal(grad1, kept_grad)


@pytest.mark.parametrize("layer", [nt.MaxPool2d, nt.AvgPool2d])
def test_output_keeps_the_input_dtype(layer):
    x = np.random.default_rng(1).standard_normal((1, 2, 4, 4))
    pool = layer(2)
    assert pool.forward(x).dtype == np.float64
    assert pool.backward(x, np.ones((1, 2, 2, 2))).dtype == np.float64


@pytest.mark.parametrize("layer", [nt.MaxPool2d, nt.AvgPool2d])
@pytest.mark.parametrize("kwargs", [dict(kernel_size=2), dict(kernel_size=3, stride=2, padding=1)])
def test_any_memory_layout_of_the_input_gives_the_same_results(layer, kwargs):
    rng = np.random.default_rng(2)
    base = rng.standard_normal((3, 6, 12, 14)).astype(np.float32)
    pool = layer(**kwargs)
    for x in (base[:, ::2, ::-1, 1::2], base.transpose(0, 1, 3, 2), np.asfortranarray(base)):
        contiguous = np.ascontiguousarray(x)
        expected = pool.forward(contiguous).copy()
        g = rng.standard_normal(expected.shape).astype(np.float32)
        expected_grad = pool.backward(contiguous, g).copy()
        np.testing.assert_allclose(pool.forward(x), expected, rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(pool.backward(x, g), expected_grad, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("stride", [None, 1])
def test_a_nan_window_sends_its_whole_gradient_to_exactly_one_position(stride):
    x = np.arange(32, dtype=np.float32).reshape(1, 2, 4, 4)
    x[0, 0, 1, 2] = x[0, 1, 3, 3] = x[0, 1, 0, 0] = np.nan
    pool = nt.MaxPool2d(2, stride)
    output = pool.forward(x)
    grad = pool.backward(x, np.full(output.shape, 2.0, np.float32))
    assert grad.sum() == 2.0 * output.size
    if stride is None:  # the windows tile the input: each 2x2 block holds exactly one window's gradient
        blocks = grad.reshape(1, 2, 2, 2, 2, 2).transpose(0, 1, 2, 4, 3, 5).reshape(1, 2, 2, 2, 4)
        assert (np.count_nonzero(blocks, axis=-1) == 1).all() and (blocks.sum(axis=-1) == 2.0).all()
