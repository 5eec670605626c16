"""numtorch.inspector.nonfinite: the first NaN or infinity of a step is found where it appeared."""

import numpy as np
import pytest

import numtorch as nt
from numtorch.inspector import AFTER_FORWARD, SAME_STEP, Inspector, NonFinite, describe, first_nonfinite
from numtorch.inspector.nonfinite import is_finite

RNG = np.random.default_rng(0)


def mlp(seed=0):
    nt.manual_seed(seed)
    return nt.Sequential(nt.Linear(4, 8), nt.ReLU(), nt.Linear(8, 8), nt.ReLU(), nt.Linear(8, 3))


def step(model, x, y, optimizer):
    optimizer.zero_grad()
    output = model.forward(x)
    loss = nt.CrossEntropyCriterion().forward(output, y)
    model.backward(x, nt.CrossEntropyCriterion().backward(output, y))
    optimizer.step()
    return loss


def clean(seed=0):
    model = mlp(seed)
    step(model, RNG.standard_normal((6, 4)).astype(np.float32), RNG.integers(0, 3, 6), nt.SGD(model, lr=0.1))
    return model


def test_a_clean_step_has_nothing_to_find():
    assert first_nonfinite(clean()) is None
    assert first_nonfinite(clean(), AFTER_FORWARD) is None


def test_the_first_output_in_forward_order_is_found_not_its_echoes():
    model = clean()
    for module in model.modules[2:]:
        module.output[0, 0] = np.nan  # (2) first, then everything after it
    model[2].gradW[0, 0] = np.inf     # an echo in the gradients: outputs come first in a step
    finding = first_nonfinite(model)
    assert finding.module == "(2) Linear" and finding.what == "output" and finding.array == "output"
    assert finding.counts == "1 NaN of 48 values"
    assert "the modules before it gave finite outputs" in finding.cause


def test_the_first_gradient_in_backward_order_is_found():
    model = clean()
    model[3].gradInput[1, 1] = np.inf  # the backward pass reaches (3) before (2) and (0)
    model[2].gradW[:] = np.nan
    model[0].gradb[0] = np.nan
    finding = first_nonfinite(model)
    assert (finding.module, finding.what, finding.array) == ("(3) ReLU", "gradient", "gradInput")
    model[3].gradInput[1, 1] = 0
    finding = first_nonfinite(model)
    assert (finding.module, finding.what, finding.array) == ("(2) Linear", "gradient", "gradW")
    assert finding.counts == "64 NaN of 64 values"


def test_a_parameter_with_finite_gradients_is_an_overflowing_update():
    model = clean()
    model[4].b[2] = -np.inf
    finding = first_nonfinite(model)
    assert (finding.module, finding.what, finding.array) == ("(4) Linear", "parameter", "b")
    text = describe(finding, 7)
    assert text.startswith("the first non-finite value is in the parameter b of (4) Linear after the update "
                           "of step 7 (1 inf of 3 values)")
    assert "the update overflowed" in text


def test_after_forward_the_previous_steps_gradients_and_update_come_before_the_new_outputs():
    model = clean()
    model[0].W[0, 0] = np.nan        # written by the previous step's update ...
    model[4].output[:] = np.nan      # ... and seen in this step's outputs
    assert first_nonfinite(model, SAME_STEP).what == "output"
    finding = first_nonfinite(model, AFTER_FORWARD)
    assert (finding.module, finding.what) == ("(0) Linear", "parameter")
    assert "after the update of step 4" in describe(finding, 5, AFTER_FORWARD)
    assert "at step 5" in describe(first_nonfinite(model, SAME_STEP), 5, AFTER_FORWARD)


def test_is_finite_is_exact_when_the_cheap_sum_overflows():
    assert is_finite(np.full(10, 3e38, np.float32))
    assert not is_finite(np.array([1.0, np.nan], np.float32))
    assert not is_finite(np.array([np.inf, -np.inf], np.float32))


def test_a_learning_rate_of_1e3_stops_the_notebook_loop_at_the_step_it_overflows():
    nt.manual_seed(1)
    model = nt.Sequential(nt.Linear(4, 8), nt.Tanh(), nt.Linear(8, 1))
    inspector = Inspector(model, every=1, echo=False)
    optimizer, criterion = nt.SGD(model, lr=1e3), nt.MSECriterion()
    x, y = RNG.standard_normal((32, 4)).astype(np.float32), RNG.standard_normal((32, 1)).astype(np.float32)
    losses = []
    with pytest.raises(NonFinite) as caught, np.errstate(all="ignore"):
        for _ in range(100):
            optimizer.zero_grad()
            output = model.forward(x)
            losses.append(criterion.forward(output, y))
            model.backward(x, criterion.backward(output, y))
            optimizer.step()
            inspector.step(losses[-1])
    error = caught.value
    assert error.step == len(losses) and np.isfinite(losses[-2]) and not np.isfinite(losses[-1])
    # The squared error overflowed in the criterion, from outputs that were still finite.
    assert (error.finding.what, error.finding.module) == ("loss", "the criterion")
    assert str(error).startswith(f"the first non-finite value is the loss (inf) at step {error.step}: the "
                                 "outputs before it were finite")
    assert inspector.warnings[0].key == ("update-high",) and inspector.warnings[0].step == 1


def test_a_parameter_made_non_finite_by_the_update_stops_the_loop_at_that_step():
    model = clean()
    inspector = Inspector(model, every=1, echo=False)
    inspector.step(1.0)
    model[2].W[3, 3] = np.inf  # what an overflowing update leaves, its gradient finite
    with pytest.raises(NonFinite, match=r"^the first non-finite value is in the parameter W of \(2\) Linear "
                                        r"after the update of step 2 \(1 inf of 64 values\)"):
        inspector.step(1.0)


def test_a_loss_that_the_criterion_made_non_finite_is_named_as_such():
    model = clean()
    with pytest.raises(NonFinite, match="the first non-finite value is the loss \\(nan\\) at step 1: the "
                                        "outputs before it were finite: the criterion made it"):
        Inspector(model, every=1, echo=False).step(float("nan"))
