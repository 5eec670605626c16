"""Criterions beyond the harness: target validation, clamps and extremes, dtypes."""

import re
import warnings

import numpy as np
import pytest

import numtorch as nt
from harness import import_torch

torch = import_torch()

CLASSIFICATION = [
    nt.CrossEntropyCriterion,
    nt.ClassNLLCriterion,
    lambda: nt.ClassNLLCriterion(log_input=True),
    nt.ClassNLLCriterionUnstable,
]


def probabilities(shape, seed=0):
    e = np.exp(np.random.default_rng(seed).standard_normal(shape))
    return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)


@pytest.mark.parametrize("make", CLASSIFICATION)
@pytest.mark.parametrize("target,error,message", [
    (np.array([0, 1, 3]), ValueError, r"expected labels in \[0, 2\], got values from 0 to 3"),
    (np.array([0, -1, 2]), ValueError, r"expected labels in \[0, 2\], got values from -1 to 2"),
    (np.array([0, 1]), ValueError, r"expected 3 labels \(the input's batch\), got 2"),
    (np.array([0.0, 1.0, 2.0]), TypeError, r"expected integer labels \(N,\) or one-hot \(N, 3\)"),
    (np.eye(3)[:2], ValueError, r"expected one-hot target of shape \(3, 3\), got \(2, 3\)"),
    (np.eye(3, dtype=int), TypeError, r"expected a float one-hot target \(N, 3\)"),
    (np.full((3, 3), np.nan), ValueError, "expected a one-hot target of finite non-negative values"),
    (np.zeros((3, 3, 1)), ValueError,
     r"expected integer labels \(N,\) or one-hot \(N, 3\), got shape \(3, 3, 1\)"),
    ([0, 1, 2], TypeError, "expected target as a NumPy array, got list"),
])
def test_bad_classification_targets(make, target, error, message):
    criterion = make()
    x = probabilities((3, 3))
    with pytest.raises(error, match=re.escape(repr(criterion)) + ": " + message):
        criterion.forward(x, target)
    with pytest.raises(error, match=message):
        criterion.backward(x, target)


@pytest.mark.parametrize("make", CLASSIFICATION)
def test_classification_input_must_be_2d(make):
    with pytest.raises(ValueError, match=r"expected input \(N, \*\), got \(3, 3, 2\)"):
        make().forward(np.ones((3, 3, 2), np.float32), np.zeros(3, dtype=int))


@pytest.mark.parametrize("make", CLASSIFICATION)
def test_labels_and_one_hot_agree(make):
    x = probabilities((5, 4))
    labels = np.array([3, 0, 1, 1, 2])
    one_hot = np.eye(4)[labels]
    first, second = make(), make()
    assert first.forward(x, labels) == pytest.approx(second.forward(x, one_hot), rel=1e-6)
    np.testing.assert_allclose(first.backward(x, labels), second.backward(x, one_hot), rtol=1e-6)


def test_class_nll_clamps_zero_probabilities():
    x = np.array([[0.0, 1.0], [0.5, 0.5]], dtype=np.float32)
    target = np.array([0, 1])
    criterion = nt.ClassNLLCriterion()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loss = criterion.forward(x, target)
        grad = criterion.backward(x, target)
    assert loss == pytest.approx((-np.log(1e-15) - np.log(0.5)) / 2, rel=1e-6)
    assert np.all(np.isfinite(grad)) and grad[0, 0] < -1e14 and grad[0, 1] == 0


def test_unstable_class_nll_gives_inf_at_zero_probability():
    x = np.array([[0.0, 1.0]], dtype=np.float32)
    assert nt.ClassNLLCriterionUnstable().forward(x, np.array([0])) == np.inf
    one_hot = nt.ClassNLLCriterionUnstable()
    assert one_hot.forward(x, np.array([[0.0, 1.0]], np.float32)) == 0
    np.testing.assert_array_equal(one_hot.backward(x, np.array([[0.0, 1.0]])), [[0.0, -1.0]])


def test_class_nll_log_input_flag():
    assert repr(nt.ClassNLLCriterion(log_input=True)) == "ClassNLLCriterion(log_input=True)"
    assert repr(nt.ClassNLLCriterion()) == "ClassNLLCriterion"
    with pytest.raises(TypeError, match="ClassNLLCriterion: expected log_input as a bool, got str"):
        nt.ClassNLLCriterion(log_input="yes")


def test_cross_entropy_is_stable_at_1e4():
    x = np.array([[1e4, -1e4, 0.0], [-1e4, -1e4, 1e4]], dtype=np.float32)
    target = np.array([1, 2])
    criterion = nt.CrossEntropyCriterion()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loss = criterion.forward(x, target)
        grad = criterion.backward(x, target)
    assert loss == pytest.approx(1e4, rel=1e-6)
    np.testing.assert_allclose(grad, [[0.5, -0.5, 0], [0, 0, 0]], atol=1e-6)


@pytest.mark.parametrize("input,target", [(0.0, 1.0), (1.0, 0.0), (0.0, 0.0), (1.0, 1.0), (1e-30, 0.5)])
def test_bce_clamps_logs_at_minus_100_as_pytorch(input, target):
    x = np.full((2, 3), input, dtype=np.float32)
    t = np.full((2, 3), target, dtype=np.float32)
    criterion = nt.BCECriterion()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loss = criterion.forward(x, t)
        grad = criterion.backward(x, t)
    tx = torch.tensor(x, requires_grad=True)
    expected = torch.nn.functional.binary_cross_entropy(tx, torch.tensor(t), reduction="sum") / 2
    expected.backward()
    assert loss == pytest.approx(expected.item(), rel=1e-6)
    np.testing.assert_allclose(grad, tx.grad.numpy(), rtol=1e-5)


def test_bce_divides_by_the_batch_size_not_the_element_count():
    x, t = np.full((2, 5), 0.5, np.float32), np.ones((2, 5), np.float32)
    assert nt.BCECriterion().forward(x, t) == pytest.approx(5 * np.log(2), rel=1e-6)


def test_mse_is_the_notebooks():
    x, t = np.array([[1.0, 2.0], [3.0, 5.0]]), np.array([[0.0, 0.0], [3.0, 3.0]])
    criterion = nt.MSECriterion()
    assert criterion.forward(x, t) == 4.5
    np.testing.assert_array_equal(criterion.backward(x, t), [[1.0, 2.0], [0.0, 2.0]])


@pytest.mark.parametrize("make,input,target,error,message", [
    (nt.MSECriterion, np.ones((2, 3)), np.ones((2, 4)), ValueError,
     r"MSECriterion: expected target of the input's shape \(2, 3\), got \(2, 4\)"),
    (nt.MSECriterion, np.ones((2, 3)), np.ones((2, 3), dtype=int), TypeError,
     "MSECriterion: expected target of dtype float32 or float64, got int64"),
    (nt.MSECriterion, np.ones((2, 3)), np.full((2, 3), np.inf), ValueError,
     "MSECriterion: expected a finite target"),
    (nt.BCECriterion, np.full((2, 3), 1.5), np.ones((2, 3)), ValueError,
     r"BCECriterion: expected input values in \[0, 1\], got values from 1.5 to 1.5"),
    (nt.BCECriterion, np.full((2, 3), np.nan), np.ones((2, 3)), ValueError,
     r"BCECriterion: expected input values in \[0, 1\]"),
    (nt.BCECriterion, np.full((2, 3), 0.5), np.full((2, 3), -1.0), ValueError,
     r"BCECriterion: expected target values in \[0, 1\], got values from -1 to -1"),
    (nt.BCECriterion, np.full((2, 3), 0.5), np.ones(2), ValueError,
     r"BCECriterion: expected target of the input's shape \(2, 3\), got \(2,\)"),
])
def test_bad_regression_targets(make, input, target, error, message):
    with pytest.raises(error, match=message):
        make().forward(input, target)
    with pytest.raises(error, match=message):
        make().backward(input, target)


@pytest.mark.parametrize("make,input,target", [
    (nt.MSECriterion, np.ones((2, 3)), np.zeros((2, 3), np.float32)),
    (nt.BCECriterion, np.full((2, 3), 0.3), np.ones((2, 3), np.float32)),
    (nt.CrossEntropyCriterion, np.ones((2, 3)), np.eye(3, dtype=np.float32)[:2]),
    (nt.ClassNLLCriterion, np.full((2, 3), 0.3), np.eye(3, dtype=np.float32)[:2]),
    (nt.ClassNLLCriterionUnstable, np.full((2, 3), 0.3), np.array([0, 2])),
])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gradient_keeps_the_input_dtype_whatever_the_target(make, input, target, dtype):
    criterion = make()
    x = input.astype(dtype)
    assert isinstance(criterion.forward(x, target), float)
    grad = criterion.backward(x, target)
    assert grad.dtype == dtype and grad.shape == x.shape and grad is criterion.gradInput


@pytest.mark.parametrize("make", [nt.ClassNLLCriterion, nt.ClassNLLCriterionUnstable])
def test_log_probabilities_fed_as_probabilities_fail_loudly(make):
    """The seed's ClassNLLCriterion takes probabilities; LogSoftMax output there used to give ~34.5."""
    scores = np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32)
    log_probabilities = nt.LogSoftMax().forward(scores)
    labels = np.array([0, 1, 2, 1])
    criterion = make()
    for call in (criterion.forward, criterion.backward, criterion.updateOutput, criterion.updateGradInput):
        with pytest.raises(ValueError, match=r"expected input probabilities \(a SoftMax output\) values "
                                             r"in \[0, 1\], got values from .* use "
                                             r"ClassNLLCriterion\(log_input=True\)"):
            call(log_probabilities, labels)
    assert nt.ClassNLLCriterion(log_input=True).forward(log_probabilities, labels) == pytest.approx(
        nt.ClassNLLCriterion().forward(np.exp(log_probabilities), labels), rel=1e-5)


def test_unstable_criterion_has_the_courses_eps():
    """The course's tests read ClassNLLCriterionUnstable.EPS and clip their probabilities to it."""
    assert nt.ClassNLLCriterionUnstable.EPS == 1e-15 == nt.ClassNLLCriterion.EPS
    p = np.array([[1.0, 0.0]], np.float32).clip(nt.ClassNLLCriterionUnstable.EPS,
                                                1 - nt.ClassNLLCriterionUnstable.EPS)
    assert np.isfinite(nt.ClassNLLCriterionUnstable().forward(p, np.array([1])))
