"""numtorch.train: fit (modes, history, bars, checkpoints and resume) and evaluate."""

import os
import signal

import numpy as np
import pytest

import numtorch as nt
from numtorch.module import Module, flatten
from numtorch.optim import SGD, Adam, StepLR
from numtorch.random import generator
from numtorch.train import Diverged, Interrupted, Position, evaluate, fit


class ModeSpy(Module):
    """Identity that records the mode and batch size of every forward call."""

    def __init__(self):
        super().__init__()
        self.calls = []

    def updateOutput(self, input):
        self.calls.append((self.training, len(input)))
        self.output = input.copy()
        return self.output

    def updateGradInput(self, input, gradOutput):
        self.gradInput = gradOutput.copy()
        return self.gradInput


class RandomScale(Module):
    """Multiplies by a random factor in [0.5, 1.5) per element in training (uses numtorch's RNG)."""

    def updateOutput(self, input):
        self.scale = generator().uniform(0.5, 1.5, input.shape).astype(input.dtype) if self.training else 1
        self.output = input * self.scale
        return self.output

    def updateGradInput(self, input, gradOutput):
        self.gradInput = gradOutput * self.scale
        return self.gradInput


def blobs(n=120, seed=0):
    """Three separable Gaussian blobs in 2-D."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    centers = np.array([[0, 4], [4, 0], [-4, -4]], np.float32)
    return (centers[y] + rng.standard_normal((n, 2))).astype(np.float32), y


def make_model(seed=0, spy=None):
    nt.manual_seed(seed)
    layers = [nt.Linear(2, 16), RandomScale(), nt.ReLU(), nt.Linear(16, 3)]
    return nt.Sequential(*(layers + ([spy] if spy else [])))


def test_fit_learns_and_records_history():
    X, y = blobs()
    model = make_model()
    history = fit(model, nt.CrossEntropyCriterion(), Adam(model, lr=0.02), (X, y), val=blobs(60, seed=1),
                  epochs=6, batch_size=16, progress=False)
    assert history["epoch"] == [1, 2, 3, 4, 5, 6]
    assert history["lr"] == [0.02] * 6
    assert history["train_loss"][-1] < history["train_loss"][0]
    assert history["val_accuracy"][-1] >= 0.95
    result = evaluate(model, *blobs(60, seed=1))
    assert result.accuracy == history["val_accuracy"][-1]
    assert result.loss == pytest.approx(history["val_loss"][-1])


def test_fit_without_val_and_zero_epochs():
    X, y = blobs()
    model = make_model()
    before = [p.copy() for p in flatten(model.getParameters())]
    history = fit(model, nt.CrossEntropyCriterion(), SGD(model, lr=0.1), (X, y), epochs=0, progress=False)
    assert history["epoch"] == []
    assert all(np.array_equal(a, b) for a, b in zip(before, flatten(model.getParameters())))
    history = fit(model, nt.CrossEntropyCriterion(), SGD(model, lr=0.1), (X, y), epochs=2, progress=False)
    assert history["val_loss"] == [None, None] and history["val_accuracy"] == [None, None]


def test_modes_are_set_around_each_phase():
    spy = ModeSpy()
    X, y = blobs(50)
    model = make_model(spy=spy)
    model.evaluate()
    fit(model, nt.CrossEntropyCriterion(), SGD(model, lr=0.1), (X, y), val=blobs(30, seed=1), epochs=2,
        batch_size=20, progress=False)
    assert spy.calls == [(True, 20), (True, 20), (True, 10), (False, 30)] * 2
    spy.calls.clear()
    model.train()
    evaluate(model, *blobs(30, seed=1))
    assert spy.calls == [(False, 30)] and model.training and spy.training


def test_evaluate_loss_accuracy_and_confusion():
    model = nt.Sequential(nt.Linear(2, 4))
    X, y = blobs(37)
    y[:5] = 3
    result = evaluate(model, X, y, batch_size=10)
    scores = model.forward(X)
    predicted = scores.argmax(axis=1)
    assert result.loss == pytest.approx(nt.CrossEntropyCriterion().forward(scores, y), rel=1e-6)
    assert result.accuracy == np.mean(predicted == y)
    assert result.confusion.shape == (4, 4) and result.confusion.sum() == 37
    for true in range(4):
        for guess in range(4):
            assert result.confusion[true, guess] == np.sum((y == true) & (predicted == guess))


def train_run(tmp_path, epochs, resume, seed=0):
    X, y = blobs()
    model = make_model(seed)
    optimizer = SGD(model, lr=0.05, momentum=0.9)
    scheduler = StepLR(optimizer, step_size=2, gamma=0.5)
    history = fit(model, nt.CrossEntropyCriterion(), optimizer, (X, y), val=blobs(40, seed=1), epochs=epochs,
                  batch_size=16, seed=5, scheduler=scheduler, checkpoint=tmp_path / "c.npz", resume=resume,
                  progress=False)
    return model, history


def test_resume_equals_uninterrupted(tmp_path):
    (tmp_path / "full").mkdir()
    (tmp_path / "run").mkdir()
    uninterrupted, full_history = train_run(tmp_path / "full", 5, resume=False)
    train_run(tmp_path / "run", 2, resume=False)
    nt.manual_seed(77)
    resumed, history = train_run(tmp_path / "run", 5, resume=True, seed=3)
    assert history == full_history
    assert history["lr"] == [0.05, 0.05, 0.025, 0.025, 0.0125]
    for ours, theirs in zip(flatten(resumed.getParameters()), flatten(uninterrupted.getParameters())):
        np.testing.assert_array_equal(ours, theirs)


def test_resume_without_a_checkpoint_file_starts_fresh(tmp_path):
    first, _ = train_run(tmp_path, 2, resume=True)
    assert (tmp_path / "c.npz").exists()
    (tmp_path / "c.npz").unlink()
    second, _ = train_run(tmp_path, 2, resume=False)
    for ours, theirs in zip(flatten(first.getParameters()), flatten(second.getParameters())):
        np.testing.assert_array_equal(ours, theirs)


def test_progress_bars_show_loss_and_accuracy(capsys):
    X, y = blobs(40)
    model = make_model()
    fit(model, nt.CrossEntropyCriterion(), SGD(model, lr=0.1), (X, y), val=blobs(20, seed=1), epochs=2,
        batch_size=10)
    err = capsys.readouterr().err
    for text in ("epoch 1/2", "epoch 2/2", "4/4", "loss=", "acc=", "val_loss=", "val_acc="):
        assert text in err


def test_clip_norm_zero_freezes_the_weights():
    X, y = blobs(40)
    model = make_model()
    before = [p.copy() for p in flatten(model.getParameters())]
    fit(model, nt.CrossEntropyCriterion(), SGD(model, lr=0.1), (X, y), epochs=1, clip_norm=0.0,
        progress=False)
    assert all(np.array_equal(a, b) for a, b in zip(before, flatten(model.getParameters())))


def test_fit_argument_errors():
    X, y = blobs(20)
    model = make_model()
    criterion = nt.CrossEntropyCriterion()
    optimizer = SGD(model, lr=0.1)
    cases = [
        (dict(model="model"), TypeError, "model as a numtorch Module"),
        (dict(criterion=nt.ReLU()), TypeError, "criterion as a numtorch Criterion"),
        (dict(optimizer="sgd"), TypeError, "optimizer as a numtorch Optimizer"),
        (dict(optimizer=SGD(make_model(), lr=0.1)), ValueError, "bound to another model"),
        (dict(scheduler=StepLR(SGD(model, lr=0.1), 1)), ValueError, "drives another optimizer"),
        (dict(scheduler="cosine"), TypeError, "numtorch LRScheduler"),
        (dict(epochs=-1), ValueError, "epochs as an int >= 0"),
        (dict(batch_size=0), ValueError, "batch_size >= 1"),
        (dict(train=(X, y[:5])), ValueError, "20 samples but y has 5"),
        (dict(train=X), TypeError, r"train as a pair \(X, y\), got ndarray"),
        (dict(val=(X, y, y)), TypeError, r"val as a pair \(X, y\), got tuple"),
        (dict(val=(X, y.astype(np.float32))), TypeError, "integer labels"),
        (dict(resume=True), ValueError, "resume=True needs the checkpoint path"),
    ]
    for override, error, message in cases:
        arguments = dict(model=model, criterion=criterion, optimizer=optimizer, train=(X, y), epochs=1,
                         progress=False)
        arguments.update(override)
        with pytest.raises(error, match=message):
            fit(**arguments)


class CountingLinear(nt.Linear):
    """Linear that counts its input-gradient and parameter-gradient computations."""

    def __init__(self, n_in, n_out):
        super().__init__(n_in, n_out)
        self.input_gradients = self.parameter_gradients = 0

    def updateGradInput(self, input, gradOutput):
        self.input_gradients += 1
        return super().updateGradInput(input, gradOutput)

    def accGradParameters(self, input, gradOutput):
        self.parameter_gradients += 1
        super().accGradParameters(input, gradOutput)


def test_fit_skips_the_data_gradient_and_restores_the_flag():
    X, y = blobs(40)
    nt.manual_seed(0)
    first = CountingLinear(2, 8)
    model = nt.Sequential(first, nt.ReLU(), nt.Linear(8, 3))
    fit(model, nt.CrossEntropyCriterion(), SGD(model, lr=0.1), (X, y), epochs=2, batch_size=10,
        progress=False)
    assert first.parameter_gradients == 8 and first.input_gradients == 0
    assert model.needs_input_grad and first.needs_input_grad
    # The Torch7 contract is untouched outside fit: backward still returns the input gradient.
    output = model.forward(X[:4])
    assert model.backward(X[:4], np.ones_like(output)).shape == (4, 2) and first.input_gradients == 1
    model.needs_input_grad = False
    fit(model, nt.CrossEntropyCriterion(), SGD(model, lr=0.1), (X, y), epochs=1, batch_size=10,
        progress=False)
    assert model.needs_input_grad is False


def test_fit_restores_the_flag_when_a_step_fails():
    class Failing(nt.CrossEntropyCriterion):
        def updateOutput(self, input, target):
            raise RuntimeError("criterion failed")

    X, y = blobs(20)
    model = make_model()
    with pytest.raises(RuntimeError, match="criterion failed"):
        fit(model, Failing(), SGD(model, lr=0.1), (X, y), epochs=1, progress=False)
    assert model.needs_input_grad is True


class CtrlC(nt.CrossEntropyCriterion):
    """Cross-entropy that presses Ctrl-C (SIGINT to this process) in its forward calls number ``at``
    (1-based; a number twice: pressed twice). ``fit``'s validation pass calls it too."""

    def __init__(self, *at):
        super().__init__()
        self.at, self.calls = at, 0

    def updateOutput(self, input, target):
        self.calls += 1
        for _ in range(self.at.count(self.calls)):
            os.kill(os.getpid(), signal.SIGINT)
        return super().updateOutput(input, target)


def interrupted_run(tmp_path, criterion):
    """``train_run``'s 5 epochs (8 batches each, then one validation call) with ``criterion``."""
    X, y = blobs()
    model = make_model()
    optimizer = SGD(model, lr=0.05, momentum=0.9)
    with pytest.raises(Interrupted) as caught:
        fit(model, criterion, optimizer, (X, y), val=blobs(40, seed=1), epochs=5, batch_size=16, seed=5,
            scheduler=StepLR(optimizer, step_size=2, gamma=0.5), checkpoint=tmp_path / "c.npz",
            progress=False)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    return caught.value


@pytest.mark.parametrize("at,saved", [
    (3, Position(0, 3)),  # inside the first epoch: a checkpoint there, after its third batch
    (8, Position(1, 0)),  # at the epoch's last batch: the epoch ends, then it stops
    (9, Position(1, 0)),  # during the validation pass
    (12, Position(1, 3)),
])
def test_ctrl_c_saves_where_it_stops_and_resume_is_bit_identical(tmp_path, at, saved):
    (tmp_path / "full").mkdir()
    uninterrupted, full_history = train_run(tmp_path / "full", 5, resume=False)
    error = interrupted_run(tmp_path, CtrlC(at))
    assert error.saved == saved and isinstance(error, KeyboardInterrupt)
    meta, _ = nt.io.read(tmp_path / "c.npz")
    assert meta["epoch"] == saved.epoch
    assert (meta["state"]["epoch_sums"] or {"batches": 0})["batches"] == saved.batch
    resumed, history = train_run(tmp_path, 5, resume=True, seed=3)
    assert history == full_history
    for ours, theirs in zip(flatten(resumed.getParameters()), flatten(uninterrupted.getParameters())):
        np.testing.assert_array_equal(ours, theirs)


def test_a_second_ctrl_c_stops_at_once(tmp_path):
    assert interrupted_run(tmp_path, CtrlC(3, 3)).saved is None
    assert not (tmp_path / "c.npz").exists()
    assert interrupted_run(tmp_path, CtrlC(12, 12)).saved == Position(1, 0)
    assert nt.io.read(tmp_path / "c.npz")[0]["epoch"] == 1


def test_ctrl_c_without_a_checkpoint_stops_at_once():
    X, y = blobs()
    model = make_model()
    with pytest.raises(Interrupted) as caught:
        fit(model, CtrlC(3), SGD(model, lr=0.05), (X, y), epochs=2, batch_size=16, progress=False)
    assert caught.value.saved is None


class Poisoned(nt.CrossEntropyCriterion):
    """Cross-entropy whose forward call number ``nan_at`` returns NaN, and whose backward call number
    ``inf_at`` returns an infinite gradient."""

    def __init__(self, nan_at=0, inf_at=0):
        super().__init__()
        self.nan_at, self.inf_at, self.forwards, self.backwards = nan_at, inf_at, 0, 0

    def updateOutput(self, input, target):
        self.forwards += 1
        return np.nan if self.forwards == self.nan_at else super().updateOutput(input, target)

    def updateGradInput(self, input, target):
        self.backwards += 1
        grad = super().updateGradInput(input, target)
        return np.full_like(grad, np.inf) if self.backwards == self.inf_at else grad


def test_training_stops_at_the_first_non_finite_loss_and_keeps_the_last_checkpoint(tmp_path):
    X, y = blobs()
    model = make_model()
    optimizer = SGD(model, lr=0.05, momentum=0.9)
    checkpoint = tmp_path / "c.npz"
    with pytest.raises(Diverged) as caught:
        fit(model, Poisoned(nan_at=12), optimizer, (X, y), val=blobs(40, seed=1), epochs=3, batch_size=16,
            checkpoint=checkpoint, progress=False)
    error = caught.value
    assert error.where == "the loss is nan at epoch 2, batch 3 of 8" and error.saved == Position(1, 0)
    assert str(error) == ("fit: training diverged: the loss is nan at epoch 2, batch 3 of 8 (lr=0.05: try a "
                          "smaller learning rate, or clip_norm)")
    assert isinstance(error, FloatingPointError)
    meta, arrays = nt.io.read(checkpoint)
    assert meta["epoch"] == 1 and len(meta["state"]["history"]["epoch"]) == 1
    assert all(np.isfinite(array).all() for array in arrays.values() if array.dtype.kind == "f")
    assert all(np.isfinite(p).all() for p in flatten(model.getParameters()))


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
def test_training_stops_at_non_finite_weights_or_validation_loss(tmp_path):
    X, y = blobs(16)
    model = make_model()
    with pytest.raises(Diverged, match="the weights hold NaN or infinity after epoch 1 ") as caught:
        fit(model, Poisoned(inf_at=1), SGD(model, lr=0.05), (X, y), epochs=2, batch_size=16,
            checkpoint=tmp_path / "c.npz", progress=False)
    assert caught.value.saved is None and not (tmp_path / "c.npz").exists()

    model = make_model()
    X_val, y_val = blobs(10, seed=1)
    X_val[3, 0] = np.inf
    with pytest.raises(Diverged, match="the validation loss is nan after epoch 1 "):
        fit(model, nt.CrossEntropyCriterion(), SGD(model, lr=0.05), (X, y), val=(X_val, y_val), epochs=2,
            progress=False)


def test_resume_refuses_a_checkpoint_beyond_epochs(tmp_path):
    train_run(tmp_path, 3, resume=False)
    with pytest.raises(ValueError, match=r"fit: the checkpoint .*c.npz is at epoch 3, beyond epochs=2"):
        train_run(tmp_path, 2, resume=True)


def branching_model(seed=0):
    """Residual and parallel branches with BatchNorm and Dropout: tables through fit and checkpoints."""
    nt.manual_seed(seed)
    body = nt.Sequential(nt.Linear(8, 8), nt.BatchNormalization(n_features=8), nt.ReLU(), nt.Dropout(0.2))
    head = nt.Concat(1, nt.Linear(8, 3), nt.Sequential(nt.Tanh(), nt.Linear(8, 2)))
    return nt.Sequential(nt.Linear(2, 8), nt.ConcatTable(body, nt.Identity()), nt.CAddTable(), head,
                         nt.Linear(5, 3))


def test_a_branching_model_trains_and_resumes_bit_for_bit(tmp_path):
    def run(folder, epochs, resume):
        model = branching_model()
        optimizer = Adam(model, lr=0.01)
        history = fit(model, nt.CrossEntropyCriterion(), optimizer, blobs(), val=blobs(40, seed=1),
                      epochs=epochs, batch_size=16, checkpoint=folder / "c.npz", resume=resume,
                      progress=False)
        return model, history

    for name in ("full", "run"):
        (tmp_path / name).mkdir()
    uninterrupted, full_history = run(tmp_path / "full", 4, resume=False)
    assert full_history["val_accuracy"][-1] > 0.9
    run(tmp_path / "run", 2, resume=False)
    resumed, history = run(tmp_path / "run", 4, resume=True)
    assert history == full_history
    for ours, theirs in zip(flatten(resumed.getParameters()) + flatten(resumed.getBuffers()),
                            flatten(uninterrupted.getParameters()) + flatten(uninterrupted.getBuffers())):
        np.testing.assert_array_equal(ours, theirs)
