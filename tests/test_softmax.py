"""SoftMax and LogSoftMax beyond the harness: stability at magnitude 1e4, shapes."""

import warnings

import numpy as np
import pytest

import numtorch as nt

LARGE = np.array([[1e4, -1e4, 0.0], [1e4, 1e4 - 1, 1e4 - 2], [-1e4, -1e4, -1e4 + 1]])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_is_stable_at_1e4(dtype):
    softmax = nt.SoftMax()
    x = LARGE.astype(dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = softmax.forward(x)
        grad = softmax.backward(x, np.ones_like(y))
    assert y.dtype == dtype and np.all(np.isfinite(grad))
    np.testing.assert_allclose(y.sum(axis=1), 1, rtol=1e-6)
    np.testing.assert_allclose(y[0], [1, 0, 0], atol=1e-12)
    e = np.exp([0.0, -1.0, -2.0])
    np.testing.assert_allclose(y[1], e / e.sum(), rtol=1e-5)
    np.testing.assert_allclose(grad, 0, atol=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_log_softmax_is_stable_at_1e4(dtype):
    log_softmax = nt.LogSoftMax()
    x = LARGE.astype(dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = log_softmax.forward(x)
        grad = log_softmax.backward(x, np.ones_like(y))
    assert y.dtype == dtype and np.all(np.isfinite(y)) and np.all(np.isfinite(grad))
    assert y[0, 1] == pytest.approx(-2e4, rel=1e-6)
    log_sum = np.log(np.exp([0.0, -1.0, -2.0]).sum())
    np.testing.assert_allclose(y[1], [-log_sum, -1 - log_sum, -2 - log_sum], rtol=1e-5)


@pytest.mark.parametrize("make", [nt.SoftMax, nt.LogSoftMax])
@pytest.mark.parametrize("shape", [(5,), (2, 3, 4)])
def test_wrong_rank(make, shape):
    with pytest.raises(ValueError, match=rf"{make.__name__}: expected input \(N, \*\), got"):
        make().forward(np.zeros(shape, np.float32))


def test_backward_equals_the_jacobian_product_for_many_classes():
    """The O(N*C) formula against the (C, C) Jacobian the notebook built, at C = 4000."""
    x = np.random.default_rng(0).standard_normal((2, 4000))
    g = np.random.default_rng(1).standard_normal((2, 4000))
    softmax = nt.SoftMax()
    y = softmax.forward(x)
    grad = softmax.backward(x, g)
    jacobian_row0 = np.diag(y[0]) - np.outer(y[0], y[0])
    np.testing.assert_allclose(grad[0], jacobian_row0 @ g[0], atol=1e-12)
