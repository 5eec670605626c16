"""Conv2d beyond the shared table: arguments, errors, initialization and array ownership.

Output and gradients against PyTorch and by finite differences: the Conv2d rows
of ``module_table.py``.
"""

import numpy as np
import pytest

import numtorch as nt


def test_arguments_take_ints_or_pairs_and_padding_defaults_to_half_the_kernel():
    conv = nt.Conv2d(3, 8, (3, 5), stride=(1, 2))
    assert conv.kernel_size == (3, 5) and conv.stride == (1, 2) and conv.padding == (1, 2)
    assert nt.Conv2d(3, 8, 4, padding=0).padding == (0, 0)
    assert repr(conv) == "Conv2d(3 -> 8, kernel_size=(3, 5), stride=(1, 2), padding=(1, 2))"
    assert repr(nt.Conv2d(1, 2, 1, bias=False)) == "Conv2d(1 -> 2, kernel_size=(1, 1), bias=False)"


def test_default_padding_keeps_height_and_width_for_odd_kernels():
    x = np.random.default_rng(0).standard_normal((2, 3, 7, 4)).astype(np.float32)
    for kernel in (1, 3, 5):
        assert nt.Conv2d(3, 5, kernel).forward(x).shape == (2, 5, 7, 4)


@pytest.mark.parametrize("kernel,padding,output", [
    (2, (1, 1), (8, 5)), (4, (2, 2), (8, 5)), ((2, 3), (1, 1), (8, 4)), ((4, 1), (2, 0), (8, 4)),
    ((1, 6), (0, 3), (7, 5)),
])
def test_default_padding_is_half_the_kernel_rounded_down_for_even_and_mixed_kernels(kernel, padding, output):
    """k // 2 on each axis: an even kernel grows that axis by one (H + 2 (k // 2) - k + 1 = H + 1)."""
    conv = nt.Conv2d(3, 5, kernel)
    assert conv.padding == padding
    x = np.random.default_rng(0).standard_normal((2, 3, 7, 4)).astype(np.float32)
    assert conv.forward(x).shape == (2, 5, *output)


def test_parameters_are_float32_uniform_within_one_over_sqrt_fan_in():
    nt.manual_seed(0)
    conv = nt.Conv2d(4, 6, (3, 2))
    bound = 1 / np.sqrt(4 * 3 * 2)
    assert conv.W.shape == (6, 4, 3, 2) and conv.b.shape == (6,)
    for p in (conv.W, conv.b):
        assert p.dtype == np.float32
        assert np.abs(p).max() <= bound and np.abs(p).max() > 0.8 * bound
    assert conv.getParameters() == [conv.W, conv.b]
    assert nt.Conv2d(4, 6, 3, bias=False).getParameters()[0].shape == (6, 4, 3, 3)


@pytest.mark.parametrize("kwargs,message", [
    (dict(kernel_size=0), "kernel_size >= 1"),
    (dict(kernel_size=(3, 0)), "kernel_size >= 1"),
    (dict(kernel_size=3, stride=0), "stride >= 1"),
    (dict(kernel_size=3, padding=-1), "padding >= 0"),
    (dict(kernel_size=(1, 2, 3)), "kernel_size as an int or a pair"),
])
def test_bad_hyper_parameters_are_value_errors(kwargs, message):
    with pytest.raises(ValueError, match=f"Conv2d: expected {message}"):
        nt.Conv2d(2, 3, **kwargs)


@pytest.mark.parametrize("kwargs", [dict(kernel_size=2.0), dict(kernel_size=3, stride=True)])
def test_non_integer_hyper_parameters_are_type_errors(kwargs):
    with pytest.raises(TypeError, match="Conv2d: expected"):
        nt.Conv2d(2, 3, **kwargs)


def test_wrong_channel_count_names_the_layer_and_shapes():
    conv = nt.Conv2d(3, 4, 3)
    message = r"Conv2d\(3 -> 4, .*expected input \(N, 3, \*, \*\), got \(2, 4, 5, 5\)"
    with pytest.raises(ValueError, match=message):
        conv.forward(np.zeros((2, 4, 5, 5), np.float32))


@pytest.mark.parametrize("shape", [(2, 3, 5), (2, 3, 5, 5, 1), (3,)])
def test_input_must_be_4d(shape):
    with pytest.raises(ValueError, match=r"Conv2d\(3 -> 4.*expected input \(N, 3, \*, \*\)"):
        nt.Conv2d(3, 4, 3).forward(np.zeros(shape, np.float32))


def test_kernel_larger_than_the_padded_input():
    conv = nt.Conv2d(1, 2, 5, padding=1)
    conv.forward(np.zeros((1, 1, 3, 3), np.float32))
    with pytest.raises(ValueError, match=r"Conv2d\(1 -> 2, .*: kernel \(5, 5\) larger than the padded input "
                                         r"\(4, 6\) of input \(1, 1, 2, 4\); expected H >= 3 and W >= 3"):
        conv.forward(np.zeros((1, 1, 2, 4), np.float32))


def test_integer_input_is_a_type_error():
    with pytest.raises(TypeError, match="Conv2d"):
        nt.Conv2d(1, 1, 1).forward(np.zeros((1, 1, 2, 2), np.int64))


def test_float64_input_gives_float64_output_and_gradients():
    conv = nt.Conv2d(2, 3, 3)
    x = np.random.default_rng(1).standard_normal((2, 2, 5, 5))
    assert conv.forward(x).dtype == np.float64
    assert conv.backward(x, np.ones((2, 3, 5, 5))).dtype == np.float64
    assert conv.gradW.dtype == np.float32


def test_earlier_results_are_not_changed_by_later_calls():
    rng = np.random.default_rng(2)
    conv = nt.Conv2d(3, 4, 3, stride=2)
    x1, x2 = (rng.standard_normal((2, 3, 9, 7)).astype(np.float32) for _ in range(2))
    out1 = conv.forward(x1)
    g1 = rng.standard_normal(out1.shape).astype(np.float32)
    grad1 = conv.backward(x1, g1)
    kept_out, kept_grad = out1.copy(), grad1.copy()
    out2 = conv.forward(x2)
    conv.backward(x2, rng.standard_normal(out2.shape).astype(np.float32))
    np.testing.assert_array_equal(out1, kept_out)
    np.testing.assert_array_equal(grad1, kept_grad)


def test_backward_uses_the_input_it_is_given():
    rng = np.random.default_rng(3)
    x1, x2 = (rng.standard_normal((3, 2, 6, 5)).astype(np.float32) for _ in range(2))
    nt.manual_seed(0)
    conv = nt.Conv2d(2, 3, 3)
    fresh = nt.Conv2d(2, 3, 3)
    fresh.W[...], fresh.b[...] = conv.W, conv.b
    g = rng.standard_normal((3, 3, 6, 5)).astype(np.float32)
    conv.forward(x1)
    conv.forward(x2)
    conv.backward(x1, g)
    fresh.forward(x1)
    fresh.backward(x1, g)
    np.testing.assert_allclose(conv.gradW, fresh.gradW, rtol=1e-6)
    np.testing.assert_allclose(conv.gradb, fresh.gradb, rtol=1e-6)


def test_a_grad_output_array_refilled_in_place_is_read_again():
    rng = np.random.default_rng(4)
    conv = nt.Conv2d(2, 3, 3)
    x = rng.standard_normal((2, 2, 5, 4)).astype(np.float32)
    g1, g2 = (rng.standard_normal((2, 3, 5, 4)).astype(np.float32) for _ in range(2))
    conv.forward(x)
    conv.backward(x, g1)
    first = conv.gradW.copy()
    conv.zeroGradParameters()
    conv.backward(x, g2)
    second = conv.gradW.copy()
    conv.zeroGradParameters()
    buffer = g1.copy()
    conv.backward(x, buffer)
    buffer[...] = g2
    grad_input = conv.backward(x, buffer).copy()
    np.testing.assert_allclose(conv.gradW, first + second, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(grad_input, conv.backward(x, g2.copy()))


@pytest.mark.parametrize("layout", ["reversed-strided", "transposed", "fortran"])
@pytest.mark.parametrize("padding", [0, 1])
def test_any_memory_layout_of_the_input_gives_the_same_results(layout, padding):
    rng = np.random.default_rng(5)
    base = rng.standard_normal((3, 6, 11, 13)).astype(np.float32)
    x = {"reversed-strided": base[:, ::2, ::-1, 1::2], "transposed": base.transpose(0, 1, 3, 2)[:, 1:4],
         "fortran": np.asfortranarray(base[:, :3])}[layout]
    conv = nt.Conv2d(3, 4, (2, 3), stride=(1, 2), padding=padding)
    g = rng.standard_normal(conv.forward(np.ascontiguousarray(x)).shape).astype(np.float32)
    expected = conv.forward(np.ascontiguousarray(x)).copy(), conv.backward(np.ascontiguousarray(x), g).copy()
    conv.zeroGradParameters()
    np.testing.assert_allclose(conv.forward(x), expected[0], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(conv.backward(x, g), expected[1], rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("kernel,padding,size", [
    (1, 0, (5, 4)), (3, 1, (7, 7)), (3, 0, (6, 5)),
    ((2, 5), (1, 2), (4, 9)), (4, 2, (5, 6)), ((3, 1), 0, (8, 3)),
])
@pytest.mark.parametrize("grad_layout", ["contiguous", "channels_last"])
def test_stride_one_input_gradient_matches_torch_for_any_kernel_and_padding(kernel, padding, size,
                                                                           grad_layout):
    # Stride 1 with several input channels takes the shifted-grid path of updateGradInput.
    from harness import import_torch

    torch = import_torch()
    rng = np.random.default_rng(6)
    nt.manual_seed(1)
    conv = nt.Conv2d(3, 5, kernel, padding=padding)
    x = rng.standard_normal((2, 3, *size)).astype(np.float32)
    out = conv.forward(x)
    g = rng.standard_normal(out.shape).astype(np.float32)
    if grad_layout == "channels_last":
        g = np.ascontiguousarray(g.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    for _ in range(2):  # the second call reuses the zero-bordered scratch grid
        grad = conv.backward(x, g)
    tx = torch.tensor(x, requires_grad=True)
    weight, bias = torch.tensor(conv.W), torch.tensor(conv.b)
    torch.nn.functional.conv2d(tx, weight, bias, padding=conv.padding).backward(torch.tensor(g))
    np.testing.assert_allclose(grad, tx.grad.numpy(), rtol=1e-5, atol=1e-5)
