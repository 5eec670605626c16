"""numtorch.inspector.recorder: the Inspector's schedule, its update ratios, resuming, bad arguments."""

import numpy as np
import pytest
from test_inspector_report import inspected

import numtorch as nt
from numtorch.inspector import DEFAULT_EVERY, Inspector


def test_steps_1_every_plus_1_and_so_on_are_recorded():
    assert [r["step"] for r in inspected(7).records] == list(range(1, 8))
    nt.manual_seed(0)
    model = nt.Sequential(nt.Linear(2, 2))
    inspector = Inspector(model, every=3, echo=False)
    recorded = [inspector.step() is not None for _ in range(8)]
    assert recorded == [True, False, False, True, False, False, True, False]
    assert Inspector(model, echo=False).every == DEFAULT_EVERY


def test_the_update_ratio_compares_with_the_weights_just_before_the_recorded_step():
    nt.manual_seed(0)
    model = nt.Sequential(nt.Linear(3, 2))
    inspector = Inspector(model, every=2, echo=False)
    W = model[0].W
    W0 = W.copy()
    W += 1.0
    assert inspector.step()["modules"]["(0) Linear"]["parameters"]["W"]["update_ratio"] == pytest.approx(
        np.linalg.norm(W - W0) / np.linalg.norm(W0), rel=1e-5)
    W += 5.0
    assert inspector.step() is None  # step 2 is not recorded; the weights now are step 3's start
    W1 = W.copy()
    W *= 0.5
    assert inspector.step()["modules"]["(0) Linear"]["parameters"]["W"]["update_ratio"] == pytest.approx(0.5)
    assert np.array_equal(W1 * 0.5, W)


def test_a_step_number_that_does_not_follow_a_kept_copy_has_no_update_ratio():
    nt.manual_seed(0)
    model = nt.Sequential(nt.Linear(3, 2))
    inspector = Inspector(model, every=5, echo=False)
    record = inspector.step(step=11)  # a resumed run: the copy from construction is not step 11's start
    assert record["modules"]["(0) Linear"]["parameters"]["W"]["update_ratio"] is None


def test_resume_keeps_the_earlier_records_and_drops_those_past_the_checkpoint():
    first = inspected(5)
    second = Inspector(first.model, every=1, echo=False)
    second.resume(first.report())
    assert second.records == first.records and second.warnings == first.warnings
    second.step(step=4)  # training resumed from a checkpoint after step 3
    assert [r["step"] for r in second.records] == [1, 2, 3, 4]
    other = Inspector(nt.Sequential(nt.Linear(4, 2)), echo=False)
    with pytest.raises(ValueError, match="Inspector.resume: the report is of another network"):
        other.resume(first.report())


@pytest.mark.parametrize("arguments, error, message", [
    ((np.zeros(3),), TypeError, "Inspector: expected model as a numtorch Module, got ndarray"),
    ((nt.Linear(2, 2), 0), ValueError, "Inspector: expected every"),
    ((nt.Linear(2, 2), 2.5), (TypeError, ValueError), "Inspector: expected every"),
])
def test_bad_arguments_are_refused(arguments, error, message):
    with pytest.raises(error, match=message):
        Inspector(*arguments)


def test_tensorboard_without_tensorboardx_says_how_to_install(monkeypatch, tmp_path):
    import sys

    monkeypatch.setitem(sys.modules, "tensorboardX", None)
    with pytest.raises(ImportError, match="pip install 'numtorch\\[tensorboard\\]'"):
        Inspector(nt.Linear(2, 2), tensorboard=tmp_path)
