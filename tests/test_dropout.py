"""Dropout beyond the harness: the drop rate and scaling, modes, seeding, errors."""

import numpy as np
import pytest

import numtorch as nt


@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_drop_rate_and_scaling(p):
    nt.manual_seed(0)
    x = np.ones((1000, 1000), dtype=np.float32)
    y = nt.Dropout(p).forward(x)
    dropped = np.mean(y == 0)
    # 1e6 Bernoulli draws: the standard deviation of the rate is below 5e-4.
    assert abs(dropped - p) < 3e-3
    np.testing.assert_allclose(np.unique(y), [0, 1 / (1 - p)], rtol=1e-6)
    assert abs(y.mean() - 1) < 1e-2, "expected value not preserved"


def test_masks_are_independent_across_elements_and_calls():
    nt.manual_seed(1)
    dropout = nt.Dropout(0.5)
    x = np.ones((200, 500))
    first = dropout.forward(x) > 0
    second = dropout.forward(x) > 0
    assert abs(np.mean(first == second) - 0.5) < 0.01
    assert abs(np.mean(first[:, :-1] == first[:, 1:]) - 0.5) < 0.01


def test_backward_uses_the_forward_mask():
    nt.manual_seed(2)
    dropout = nt.Dropout(0.25)
    x = np.random.default_rng(0).standard_normal((50, 40))
    y = dropout.forward(x)
    grad = dropout.backward(x, np.ones_like(x))
    np.testing.assert_array_equal(grad == 0, y == 0)
    np.testing.assert_allclose(grad[grad != 0], 1 / 0.75)


def test_evaluate_is_a_copy_of_the_identity():
    dropout = nt.Dropout(0.9).evaluate()
    x = np.random.default_rng(0).standard_normal((4, 5)).astype(np.float32)
    y = dropout.forward(x)
    assert y is not x and y.dtype == np.float32
    np.testing.assert_array_equal(y, x)
    g = np.ones_like(x)
    assert dropout.backward(x, g) is not g and np.all(dropout.backward(x, g) == 1)


def test_p_zero_keeps_everything():
    x = np.random.default_rng(0).standard_normal((10, 10))
    np.testing.assert_array_equal(nt.Dropout(0.0).forward(x), x)


def test_same_seed_same_mask():
    x = np.ones((8, 8), dtype=np.float32)
    nt.manual_seed(5)
    first = nt.Dropout().forward(x)
    nt.manual_seed(5)
    np.testing.assert_array_equal(nt.Dropout().forward(x), first)


def test_the_mask_does_not_depend_on_the_data_dtype():
    x = np.ones((64, 32), dtype=np.float32)
    masks = []
    for dtype in (np.float32, np.float64):
        nt.manual_seed(7)
        y = nt.Dropout(0.3).forward(x.astype(dtype))
        assert y.dtype == dtype
        masks.append(y != 0)
    np.testing.assert_array_equal(masks[0], masks[1])


def test_backward_follows_the_mode_of_the_last_forward():
    nt.manual_seed(3)
    dropout = nt.Dropout(0.5)
    x = np.ones((20, 20))
    y = dropout.forward(x)
    dropout.evaluate()
    np.testing.assert_array_equal(dropout.backward(x, np.ones_like(x)), y)


@pytest.mark.parametrize("p,error,message", [
    (1.0, ValueError, r"Dropout: expected p in \[0, 1\), got 1.0"),
    (-0.1, ValueError, r"Dropout: expected p in \[0, 1\), got -0.1"),
    (float("nan"), ValueError, "Dropout: expected p in"),
    ("0.5", TypeError, "Dropout: expected p as a number, got str"),
    (None, TypeError, "Dropout: expected p as a number, got NoneType"),
])
def test_bad_p(p, error, message):
    with pytest.raises(error, match=message):
        nt.Dropout(p)


def test_repr():
    assert repr(nt.Dropout()) == "Dropout(p=0.5)" and repr(nt.Dropout(0.25)) == "Dropout(p=0.25)"
