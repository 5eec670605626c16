"""numtorch.io.checkpoint: a resumed run equals an uninterrupted one; checkpoint errors."""

from pathlib import Path

import numpy as np
import pytest

import numtorch as nt
from numtorch import io
from numtorch.data import Batches
from numtorch.module import flatten
from numtorch.optim import SGD, Adam
from user_layers import Noise

FILES = Path(__file__).parent / "files"


def model(seed=0):
    nt.manual_seed(seed)
    return nt.Sequential(nt.Linear(6, 5), nt.LeakyReLU(0.2), nt.Sequential(nt.Linear(5, 3), nt.Tanh()))


def train_epochs(net, optimizer, batches, epochs):
    criterion = nt.CrossEntropyCriterion()
    for _ in range(epochs):
        for xb, yb in batches:
            optimizer.zero_grad()
            criterion.forward(net.forward(xb), yb)
            net.backward(xb, criterion.backward(net.output, yb))
            optimizer.step()


def noisy_model(seed):
    nt.manual_seed(seed)
    return nt.Sequential(nt.Linear(4, 8), Noise(8), nt.ReLU(), nt.Linear(8, 3))


@pytest.mark.parametrize("make_optimizer", [lambda m: Adam(m, lr=1e-2),
                                            lambda m: SGD(m, lr=0.1, momentum=0.9, nesterov=True)],
                         ids=["Adam", "SGD"])
def test_checkpoint_resume_equals_uninterrupted_run(tmp_path, make_optimizer):
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((50, 4)).astype(np.float32), rng.integers(0, 3, 50)

    net = noisy_model(1)
    optimizer, batches = make_optimizer(net), Batches(X, y, 8, seed=3)
    train_epochs(net, optimizer, batches, 4)
    uninterrupted = [p.copy() for p in flatten(net.getParameters())]

    net = noisy_model(1)
    optimizer, batches = make_optimizer(net), Batches(X, y, 8, seed=3)
    train_epochs(net, optimizer, batches, 2)
    io.save_checkpoint(tmp_path / "c.npz", net, optimizer, 2, batches=batches.state_dict(), note=[1, "a"])
    nt.manual_seed(123)  # the interrupted process's later draws must not matter

    resumed = noisy_model(99)
    optimizer, batches = make_optimizer(resumed), Batches(X, y, 8, seed=42)
    epoch, state = io.load_checkpoint(tmp_path / "c.npz", resumed, optimizer)
    assert epoch == 2 and state["note"] == [1, "a"]
    batches.load_state_dict(state["batches"])
    train_epochs(resumed, optimizer, batches, 2)
    for ours, theirs in zip(flatten(resumed.getParameters()), uninterrupted):
        np.testing.assert_array_equal(ours, theirs)


def test_checkpoint_errors(tmp_path):
    net = model()
    optimizer = Adam(net)
    io.save(net, tmp_path / "m.npz")
    with pytest.raises(ValueError, match="a saved model, not a checkpoint"):
        io.load_checkpoint(tmp_path / "m.npz", net, optimizer)
    with pytest.raises(TypeError, match="JSON-serializable"):
        io.save_checkpoint(tmp_path / "c.npz", net, optimizer, 1, bad=object())
    assert not (tmp_path / "c.npz").exists()
    io.save_checkpoint(tmp_path / "c.npz", net, optimizer, 1)
    assert isinstance(io.load(tmp_path / "c.npz"), nt.Sequential)
    with pytest.raises(ValueError, match="the state is of 'Adam', not SGD"):
        io.load_checkpoint(tmp_path / "c.npz", net, SGD(net, lr=0.1))


def test_a_checkpoint_of_the_previous_version_resumes(tmp_path):
    """tests/files/v1-checkpoint.npz was written by numtorch before config() (see test_io_model.py)."""
    net = nt.Sequential(nt.Conv2d(1, 2, 3), nt.ReLU(), nt.MaxPool2d(2), nt.BatchNormalization(0.9),
                        nt.Flatten(), nt.Dropout(0.25), nt.Linear(18, 5), nt.LeakyReLU(0.1), nt.ELU(0.5),
                        nt.Sequential(nt.Linear(5, 3, bias=False), nt.Identity(), nt.LogSoftMax()))
    optimizer = Adam(net, lr=1e-2)
    epoch, state = io.load_checkpoint(FILES / "v1-checkpoint.npz", net, optimizer)
    assert epoch == 2 and state == {"note": "v1"} and optimizer.state_dict()["step"] == 2
    expected = np.load(FILES / "v1-expected.npz")
    np.testing.assert_array_equal(net.evaluate().forward(expected["x"]), expected["output"])


def test_checkpoint_state_must_be_finite_json(tmp_path):
    """A checkpoint restores exactly what it was given, so a NaN in its state is refused, not nulled."""
    net = model()
    with pytest.raises(ValueError, match="save_checkpoint: state must be JSON-serializable, with finite"):
        io.save_checkpoint(tmp_path / "c.npz", net, SGD(net, lr=0.1), 1, history={"loss": [float("nan")]})
    assert not (tmp_path / "c.npz").exists()
