"""gradcheck itself: its errors, that it leaves the module and the RNG alone, that it can fail."""

import numpy as np
import pytest

import numtorch as nt


def test_returns_a_small_float_for_a_correct_network():
    nt.manual_seed(0)
    net = nt.Sequential(nt.Linear(3, 4), nt.Dropout(0.3), nt.ELU(), nt.Linear(4, 2), nt.SoftMax())
    error = nt.gradcheck(net, np.random.default_rng(0).standard_normal((2, 3)))
    assert isinstance(error, float) and error <= 1e-6


def test_leaves_the_module_and_the_generator_untouched():
    nt.manual_seed(1)
    net = nt.Sequential(nt.Linear(3, 2), nt.Dropout(0.5))
    weights = net[0].W.copy()
    state = nt.get_rng_state()
    nt.gradcheck(net, np.ones((2, 3), np.float32))
    assert net[0].W.dtype == np.float32 and np.array_equal(net[0].W, weights)
    assert net.output is None and not net[0].gradW.any()
    assert nt.get_rng_state() == state


def test_catches_a_wrong_criterion_gradient():
    class HalfGradientMSE(nt.MSECriterion):
        def updateGradInput(self, input, target):
            return super().updateGradInput(input, target) / 2

    x, t = np.random.default_rng(0).standard_normal((3, 2)), np.zeros((3, 2))
    assert nt.gradcheck(nt.MSECriterion(), x, t) <= 1e-6
    assert nt.gradcheck(HalfGradientMSE(), x, t) > 0.1


def test_bad_arguments():
    with pytest.raises(TypeError, match="gradcheck: expected a Module or Criterion, got function"):
        nt.gradcheck(lambda x: x, np.ones((2, 2)))
    with pytest.raises(ValueError, match="gradcheck: MSECriterion is a criterion and needs a target"):
        nt.gradcheck(nt.MSECriterion(), np.ones((2, 2)))
    with pytest.raises(TypeError, match=r"gradcheck\(ReLU\): expected input of dtype float32 or float64"):
        nt.gradcheck(nt.ReLU(), np.ones((2, 2), dtype=int))
