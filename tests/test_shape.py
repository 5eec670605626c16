"""Flatten beyond the shared table (output and gradient against PyTorch: the Flatten row)."""

import numpy as np
import pytest

import numtorch as nt


def test_flatten_keeps_the_batch_and_backward_restores_the_shape():
    x = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    flat = nt.Flatten()
    out = flat.forward(x)
    np.testing.assert_array_equal(out, x.reshape(2, 12))
    grad = flat.backward(x, out * 2)
    assert grad.shape == x.shape
    np.testing.assert_array_equal(grad, 2 * x)


def test_flatten_results_never_alias_input_or_gradient():
    x = np.ones((2, 3, 2), np.float32)
    g = np.ones((2, 6), np.float32)
    flat = nt.Flatten()
    out = flat.forward(x)
    grad = flat.backward(x, g)
    x[...] = 5
    g[...] = 5
    assert out.max() == 1 and grad.max() == 1


def test_flatten_needs_a_batch_of_at_least_one_feature_axis():
    with pytest.raises(ValueError, match=r"Flatten: expected input with at least 2 dimensions, got \(4,\)"):
        nt.Flatten().forward(np.zeros(4, np.float32))
