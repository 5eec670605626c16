"""numtorch.inspector.diagnosis: each warning fires on a network built to have its problem, once, with
its numbers; a healthy MNIST CNN run stays quiet; a finished run's records give the same warnings."""

import os

import numpy as np
import pytest

import numtorch as nt
from numtorch.inspector import Inspector, replay
from numtorch.inspector.diagnosis import DEPTH_ORDERS, PATIENCE, diagnose

MNIST = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "mnist-t10k")


def train(model, x, y, steps, lr, criterion=None, optimizer=None, every=1):
    """The notebook loop with an inspector; returns the inspector."""
    criterion = criterion or nt.CrossEntropyCriterion()
    optimizer = optimizer or nt.SGD(model, lr=lr)
    inspector = Inspector(model, every=every, echo=False)
    for _ in range(steps):
        optimizer.zero_grad()
        output = model.forward(x)
        loss = criterion.forward(output, y)
        model.backward(x, criterion.backward(output, y))
        optimizer.step()
        inspector.step(loss)
    return inspector


def data(n=64, features=10, classes=3, seed=0, scale=1.0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((n, features)) * scale).astype(np.float32), rng.integers(0, classes, n)


def keys(inspector):
    return [warning.key for warning in inspector.warnings]


def test_an_all_dead_relu_layer_is_reported_with_its_share_and_since_when():
    nt.manual_seed(0)
    hidden = nt.Linear(10, 20)
    hidden.b[:] = -100  # every unit below 0 on every sample: ReLU passes nothing, forever
    model = nt.Sequential(hidden, nt.ReLU(), nt.Linear(20, 3))
    inspector = train(model, *data(), steps=PATIENCE + 2, lr=0.1)
    # With no gradient through the ReLU, the layer before it stops learning too.
    assert keys(inspector) == [("dead", "(1) ReLU"), ("update-low",)]
    assert "0.0e+00 at (0) Linear W" in inspector.warnings[1].text
    warning = inspector.warnings[0]
    assert warning.step == PATIENCE  # the first record at which PATIENCE records agree
    assert warning.text.startswith("(1) ReLU: 100% of its 20 units output 0 on every sample since step 1")


def test_a_20_layer_sigmoid_net_has_vanishing_gradients():
    nt.manual_seed(0)
    layers = []
    for _ in range(20):
        layers += [nt.Linear(16, 16), nt.Sigmoid()]
    model = nt.Sequential(*layers, nt.Linear(16, 3))
    inspector = train(model, *data(features=16), steps=PATIENCE, lr=0.1)
    assert ("vanishing",) in keys(inspector)
    text = next(w.text for w in inspector.warnings if w.key == ("vanishing",))
    assert "at (0) Linear but" in text and "at (40) Linear" in text and "since step 1" in text
    orders = int(text.split(", ")[1].split(" orders")[0])
    assert orders >= DEPTH_ORDERS


def test_a_learning_rate_of_1e3_is_reported_at_the_first_step():
    nt.manual_seed(0)
    model = nt.Sequential(nt.Linear(10, 32), nt.ReLU(), nt.Linear(32, 3))
    inspector = train(model, *data(), steps=1, lr=1e3)
    assert keys(inspector) == [("update-high",)]
    text = inspector.warnings[0].text
    assert text.startswith("updates too large for the weights at step 1: |dW| / |W| is ")
    assert "try a learning rate 10 times smaller" in text


def test_a_saturated_sigmoid_layer_is_reported():
    nt.manual_seed(0)
    model = nt.Sequential(nt.Linear(10, 16), nt.Sigmoid(), nt.Linear(16, 3))
    inspector = train(model, *data(scale=50.0), steps=PATIENCE, lr=0.01)  # inputs far from mean 0, spread 1
    assert ("saturated", "(1) Sigmoid") in keys(inspector)
    text = next(w.text for w in inspector.warnings if w.key == ("saturated", "(1) Sigmoid"))
    assert "of its outputs are saturated (sigmoid within 0.01 of 0 or 1" in text and "since step 1" in text


def test_tiny_updates_are_reported():
    nt.manual_seed(0)
    model = nt.Sequential(nt.Linear(10, 16), nt.Tanh(), nt.Linear(16, 3))
    inspector = train(model, *data(), steps=PATIENCE, lr=1e-9)
    assert keys(inspector) == [("update-low",)]
    assert "(0) Linear W" in inspector.warnings[0].text and "(2) Linear W" in inspector.warnings[0].text


def record(step, near_input, near_output):
    """A record of two Linear layers whose relative gradients |dL/dW| / |W| are the two given."""
    layer = {"output": None, "grad_input_norm": None}
    return {"step": step, "loss": 1.0, "modules": {
        "(0) Linear": {**layer, "parameters": {"W": {"norm": 1.0, "grad_norm": near_input,
                                                      "update_ratio": 1e-3}}},
        "(1) Linear": {**layer, "parameters": {"W": {"norm": 2.0, "grad_norm": 2 * near_output,
                                                      "update_ratio": 1e-3}}}}}


MODULES = [{"name": f"({i}) Linear", "type": "Linear", "kind": None, "parameters": {"W": 2}}
           for i in range(2)]


def test_exploding_gradients_need_patience_records_in_a_row():
    records = [record(1, 1e4, 1.0), record(2, 1.0, 1.0), record(3, 1e4, 1.0), record(4, 1e4, 1.0)]
    given = set()
    assert [diagnose(MODULES, records[:end], given) for end in range(1, 4)] == [[], [], []]
    records.append(record(5, 1e5, 1.0))
    (warning,) = diagnose(MODULES, records, given)
    assert warning.key == ("exploding",) and warning.step == 5
    assert warning.text.startswith("gradients explode with depth: |dL/dW| / |W| is 1.0e+05 at (0) Linear but "
                                   "1.0e+00 at (1) Linear, 5 orders of magnitude larger near the input, "
                                   "since step 3")
    assert diagnose(MODULES, records + [record(6, 1e5, 1.0)], given) == []  # once


def test_each_warning_is_printed_once_on_stderr(capsys):
    nt.manual_seed(0)
    hidden = nt.Linear(10, 20)
    hidden.b[:] = -100
    model = nt.Sequential(hidden, nt.ReLU(), nt.Linear(20, 3))
    optimizer = nt.SGD(model, lr=0.1)
    inspector = Inspector(model, every=1)
    x, y = data()
    for _ in range(2 * PATIENCE):
        optimizer.zero_grad()
        output = model.forward(x)
        model.backward(x, nt.CrossEntropyCriterion().backward(output, y))
        optimizer.step()
        inspector.step()
    lines = capsys.readouterr().err.splitlines()
    assert len(inspector.warnings) == 2
    assert lines == [f"numtorch inspect: warning: {warning.text}" for warning in inspector.warnings]


def test_replaying_the_records_gives_the_warnings_the_live_run_gave():
    nt.manual_seed(0)
    hidden = nt.Linear(10, 20)
    hidden.b[:12] = -100
    model = nt.Sequential(hidden, nt.ReLU(), nt.Linear(20, 16), nt.Sigmoid(), nt.Linear(16, 3))
    inspector = train(model, *data(scale=30.0), steps=12, lr=0.05, every=2)
    assert len(inspector.warnings) >= 2
    report = inspector.report()
    assert replay(report["modules"], report["records"]) == inspector.warnings


@pytest.mark.skipif(not os.path.isdir(MNIST), reason="needs ../shared/data/mnist-t10k")
def test_a_healthy_mnist_cnn_run_stays_quiet():
    from numtorch.data import load_mnist
    from numtorch.models import build
    from numtorch.train import evaluate, fit

    X, y = load_mnist(MNIST, "test")
    nt.manual_seed(0)
    model, _ = build("cnn", X.shape[1:], 10)  # the preset, with numtorch train's default optimizer
    inspector = Inspector(model, every=10, echo=False)
    fit(model, nt.CrossEntropyCriterion(), nt.Adam(model, lr=1e-3), (X[:2560], y[:2560]), epochs=1,
        progress=False, threads=None, inspect=inspector)
    assert evaluate(model, X[8000:9000], y[8000:9000]).accuracy > 0.7  # it learns ...
    assert len(inspector.records) == 4 and inspector.warnings == []  # ... and nothing is wrong
