"""Linear beyond the harness: construction, initialization, shape errors, dtypes."""

import re

import numpy as np
import pytest

import numtorch as nt


def test_parameters_shapes_and_initial_range():
    nt.manual_seed(3)
    layer = nt.Linear(50, 7)
    assert layer.W.shape == (7, 50) and layer.b.shape == (7,)
    assert layer.W.dtype == np.float32 and layer.gradW.dtype == np.float32
    bound = 1 / np.sqrt(50)
    assert np.abs(layer.W).max() <= bound and np.abs(layer.b).max() <= bound
    assert np.abs(layer.W).max() > 0.8 * bound
    assert not layer.gradW.any() and not layer.gradb.any()
    assert layer.getParameters()[0] is layer.W and layer.getGradParameters()[1] is layer.gradb


def test_without_bias():
    layer = nt.Linear(3, 2, bias=False)
    assert layer.b is None and layer.getParameters() == [layer.W]
    assert repr(layer) == "Linear(3 -> 2, bias=False)"
    np.testing.assert_allclose(layer.forward(np.eye(3, dtype=np.float32)), layer.W.T)


def test_same_seed_same_weights():
    nt.manual_seed(7)
    first = nt.Linear(4, 4).W
    nt.manual_seed(7)
    np.testing.assert_array_equal(nt.Linear(4, 4).W, first)


@pytest.mark.parametrize("shape", [(32, 785), (784,), (2, 784, 1)])
def test_wrong_input_shape(shape):
    layer = nt.Linear(784, 100)
    message = f"Linear(784 -> 100): expected input (N, 784), got {shape}"
    with pytest.raises(ValueError, match=re.escape(message)):
        layer.forward(np.zeros(shape, np.float32))


@pytest.mark.parametrize("n_in,n_out,error,message", [
    (0, 3, ValueError, "Linear: expected n_in >= 1, got 0"),
    (3, -1, ValueError, "Linear: expected n_out >= 1, got -1"),
    (2.0, 3, TypeError, "Linear: expected n_in as an int, got float"),
    (True, 3, TypeError, "Linear: expected n_in as an int, got bool"),
])
def test_bad_sizes(n_in, n_out, error, message):
    with pytest.raises(error, match=message):
        nt.Linear(n_in, n_out)


def test_float64_input_keeps_float32_parameters_and_accumulates():
    layer = nt.Linear(3, 2)
    x = np.ones((4, 3))
    output = layer.forward(x)
    assert output.dtype == np.float64
    layer.backward(x, np.ones((4, 2)))
    assert layer.gradW.dtype == np.float32
    np.testing.assert_allclose(layer.gradW, np.full((2, 3), 4.0))
    np.testing.assert_allclose(layer.gradb, [4.0, 4.0])
