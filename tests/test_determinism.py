"""The same seed gives the same run: identical weights, losses and outputs, dense and conv.

Everything random in numtorch (initial weights, Dropout masks) comes from
``numtorch.random``, and the batch order from ``fit``'s seed, so NumPy's
global generator, used or not in between, changes nothing.
"""

import numpy as np
import pytest

import numtorch as nt
from numtorch.module import flatten
from numtorch.optim import Adam
from numtorch.train import fit


def data(n=96):
    rng = np.random.default_rng(0)
    return rng.random((n, 1, 8, 8)).astype(np.float32), rng.integers(0, 10, size=n)


def dense():
    return nt.Sequential(nt.Flatten(), nt.Linear(64, 32), nt.BatchNormalization(n_features=32), nt.ReLU(),
                         nt.Dropout(0.3), nt.Linear(32, 10))


def conv():
    return nt.Sequential(nt.Conv2d(1, 4, 3), nt.BatchNormalization(n_features=4), nt.ReLU(),
                         nt.MaxPool2d(2), nt.Dropout(0.2), nt.Flatten(), nt.Linear(4 * 4 * 4, 10))


def run(make, seed):
    """Train from ``seed``; return the weights and buffers, the history and the evaluation outputs."""
    X, y = data()
    nt.manual_seed(seed)
    model = make()
    history = fit(model, nt.CrossEntropyCriterion(), Adam(model, lr=1e-2), (X[:64], y[:64]),
                  val=(X[64:], y[64:]), epochs=3, batch_size=16, seed=seed, progress=False)
    train_output = model.train().forward(X[64:])  # a Dropout mask drawn after training
    eval_output = model.evaluate().forward(X[64:])
    state = [a.copy() for a in flatten(model.getParameters()) + flatten(model.getBuffers())]
    return state, history, [train_output, eval_output]


@pytest.mark.parametrize("make", [dense, conv], ids=["dense", "conv"])
def test_same_seed_same_run(make):
    first = run(make, seed=3)
    np.random.seed(12345)
    np.random.random(1000)  # NumPy's global generator is not numtorch's
    second = run(make, seed=3)
    for ours, theirs in zip(first[0] + first[2], second[0] + second[2]):
        assert ours.dtype == theirs.dtype
        np.testing.assert_array_equal(ours, theirs)
    assert first[1] == second[1]
    assert all(np.isfinite(loss) for loss in first[1]["train_loss"])


@pytest.mark.parametrize("make", [dense, conv], ids=["dense", "conv"])
def test_another_seed_another_run(make):
    weights, history, _ = run(make, seed=3)
    other_weights, other_history, _ = run(make, seed=4)
    assert not np.array_equal(weights[0], other_weights[0])
    assert history["train_loss"] != other_history["train_loss"]
