"""numtorch.inspector.tensorboard: the event files, read back with TensorBoard's own reader."""

import numpy as np
import pytest

import numtorch as nt
from numtorch.inspector import Inspector

pytest.importorskip("tensorboardX")
accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")


def read(directory):
    events = accumulator.EventAccumulator(str(directory), size_guidance={"scalars": 0, "histograms": 0})
    events.Reload()
    return events


def test_scalars_and_histograms_of_every_layer_are_in_the_event_files(tmp_path):
    nt.manual_seed(0)
    model = nt.Sequential(nt.Linear(4, 6), nt.Tanh(), nt.Linear(6, 2))
    optimizer = nt.SGD(model, lr=0.1)
    inspector = Inspector(model, every=2, tensorboard=tmp_path / "tb", echo=False)
    x, y = np.random.default_rng(0).standard_normal((8, 4)).astype(np.float32), np.arange(8) % 2
    for _ in range(5):
        optimizer.zero_grad()
        output = model.forward(x)
        loss = nt.CrossEntropyCriterion().forward(output, y)
        model.backward(x, nt.CrossEntropyCriterion().backward(output, y))
        optimizer.step()
        inspector.step(loss)
    inspector.log_epoch(5, {"lr": 0.1, "train_loss": 0.5, "val_loss": None})
    inspector.close()
    events = read(tmp_path / "tb")
    scalars, histograms = set(events.Tags()["scalars"]), set(events.Tags()["histograms"])
    assert {"train/loss", "epoch/lr", "epoch/train_loss", "0_Linear/output_mean", "0_Linear/W_update_ratio",
            "1_Tanh/output_saturated", "1_Tanh/grad_input_norm", "2_Linear/b_grad_norm"} <= scalars
    assert "epoch/val_loss" not in scalars
    assert {"0_Linear/output", "0_Linear/W", "0_Linear/W_grad", "1_Tanh/gradInput",
            "2_Linear/b"} <= histograms
    records = inspector.records
    assert [e.step for e in events.Scalars("train/loss")] == [1, 3, 5]
    assert [e.value for e in events.Scalars("0_Linear/output_std")] == pytest.approx(
        [r["modules"]["(0) Linear"]["output"]["std"] for r in records], rel=1e-6)
    histogram = events.Histograms("2_Linear/W")[-1].histogram_value
    assert histogram.num == 12 and histogram.max == pytest.approx(float(model[2].W.max()))


def test_sections_are_zero_padded_so_they_sort_in_network_order(tmp_path):
    from numtorch.inspector.tensorboard import section

    assert section("(1).(0).(12) Conv2d", 2) == "01.00.12_Conv2d"
    assert section("Linear", 2) == "Linear"
