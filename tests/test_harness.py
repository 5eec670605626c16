"""The harness must be able to fail: a module with a wrong gradient is caught."""

import numpy as np
import pytest

import numtorch as nt
from harness import (
    ModuleCase,
    check_module_against_torch,
    check_module_direct_calls,
    check_module_gradcheck,
    import_torch,
)

torch = import_torch()


class WrongReLU(nt.ReLU):
    def updateGradInput(self, input, gradOutput):
        self.gradInput = gradOutput * (input > 0) * 1.1
        return self.gradInput


class WrongLinear(nt.Linear):
    def accGradParameters(self, input, gradOutput):
        self.gradW += 0.5 * gradOutput.T @ input


def relu_case(make):
    return ModuleCase("wrong", lambda rng, n: (make(), rng.standard_normal((n, 6))),
                      lambda m, x, p, b: torch.relu(x))


def linear_case():
    return ModuleCase("wrong", lambda rng, n: (WrongLinear(4, 3), rng.standard_normal((n, 4))),
                      lambda m, x, p, b: torch.nn.functional.linear(x, *p))


def test_harness_accepts_correct_module():
    check_module_against_torch(torch, relu_case(nt.ReLU), seed=0, batch=8, mode="train")


@pytest.mark.parametrize("case", [relu_case(WrongReLU), linear_case()], ids=["input", "param"])
def test_harness_catches_wrong_gradient(case):
    with pytest.raises(AssertionError):
        check_module_against_torch(torch, case, seed=0, batch=8, mode="train")
    with pytest.raises(AssertionError):
        check_module_gradcheck(case, seed=0, batch=8, mode="train")


def test_gradcheck_accepts_custom_layer_in_one_line():
    class Square(nt.Module):
        def updateOutput(self, input):
            self.output = input**2
            return self.output

        def updateGradInput(self, input, gradOutput):
            self.gradInput = 2 * input * gradOutput
            return self.gradInput

    assert nt.gradcheck(Square(), np.random.default_rng(0).standard_normal((3, 4))) <= 1e-6


class BiasedMovingVariance(nt.BatchNormalization):
    """Moves the variance with the biased batch estimate: only the buffers are wrong."""

    def updateOutput(self, input):
        before = self.moving_variance.copy()
        output = super().updateOutput(input)
        count = input.shape[0]
        batch_part = (self.moving_variance - self.alpha * before) * (count - 1) / count
        self.moving_variance[...] = self.alpha * before + batch_part
        return output


def test_harness_catches_wrong_moving_statistics():
    case = ModuleCase(
        "wrong", lambda rng, n: (BiasedMovingVariance(n_features=3), rng.standard_normal((n, 3))),
        lambda m, x, p, b: torch.nn.functional.batch_norm(x, b[0], b[1], training=True,
                                                          momentum=1 - m.alpha, eps=m.EPS))
    with pytest.raises(AssertionError, match="buffer"):
        check_module_against_torch(torch, case, seed=0, batch=4, mode="train")


class ForwardOnlyScale(nt.Module):
    """Does its work in forward instead of updateOutput: a direct updateOutput call misses it."""

    def forward(self, input):
        self.scale = 2.0
        return super().forward(input)

    def updateOutput(self, input):
        self.output = input * getattr(self, "scale", 1.0)
        return self.output

    def updateGradInput(self, input, gradOutput):
        self.gradInput = gradOutput * getattr(self, "scale", 1.0)
        return self.gradInput


def test_direct_call_pass_catches_work_done_only_in_forward():
    case = ModuleCase("forward-only", lambda rng, n: (ForwardOnlyScale(), rng.standard_normal((n, 3))),
                      lambda m, x, p, b: 2 * x)
    check_module_against_torch(torch, case, seed=0, batch=4, mode="train")
    with pytest.raises(AssertionError, match="updateOutput"):
        check_module_direct_calls(case, "train")
