"""Training runs that ``test_distributed.py`` launches under ``mpiexec`` and also runs in one process.

``python tests/mpi_worker.py OUT SCENARIO...`` runs each scenario on every
rank; rank 0 writes ``OUT/SCENARIO.npz`` (the final parameters and buffers as
``array_<i>``, plus what the scenario records) and every scenario checks that
all ranks end with bitwise the same model. ``fault``, ``kill`` and
``cli_fault`` make rank 1 fail mid-epoch instead.
"""

import json
import os
import pathlib
import signal
import sys
import time

import numpy as np

import numtorch as nt
from numtorch import distributed
from numtorch.module import flatten
from numtorch.optim import SGD, Adam, StepLR, sgd_momentum
from numtorch.train import fit

CLASSES = 4


def dataset(n, features=12, seed=0):
    """Four classes from the signs of two fixed projections of Gaussian samples, float32."""
    X = np.random.default_rng(seed).standard_normal((n, features)).astype(np.float32)
    projections = X @ np.random.default_rng(99).standard_normal((features, 2)).astype(np.float32)
    return X, (projections[:, 0] > 0) + 2 * (projections[:, 1] > 0)


def arrays(model):
    return [np.array(a) for a in flatten(model.getParameters()) + flatten(model.getBuffers())]


def same_on_every_rank(model):
    """Rank 0's parameters and buffers equal bitwise every other rank's."""
    mine = arrays(model)
    for theirs in distributed.allgather(mine)[1:]:
        assert all(np.array_equal(a, b) for a, b in zip(mine, theirs)), "the ranks hold different models"


def mlp(seed=1, features=12, hidden=24):
    nt.manual_seed(seed)
    return nt.Sequential(nt.Linear(features, hidden), nt.ReLU(), nt.Linear(hidden, hidden), nt.Tanh(),
                         nt.Linear(hidden, CLASSES))


def run_fit(checkpoint=None):
    """Adam, a step schedule, clipping, validation; 1001 samples in batches of 100: the last holds 1."""
    X, y = dataset(1001)
    model = mlp()
    optimizer = Adam(model, lr=0.01)
    history = fit(model, nt.CrossEntropyCriterion(), optimizer, (X, y), val=dataset(301, seed=1), epochs=3,
                  batch_size=100, seed=4, scheduler=StepLR(optimizer, 2, 0.5), clip_norm=5.0, progress=False)
    return model, {"history": history}


def batch_norm_net(norm):
    """Linear -> ``norm`` -> scale and shift -> ReLU -> Linear."""
    nt.manual_seed(2)
    return nt.Sequential(nt.Linear(12, 16), norm(alpha=0.8, n_features=16), nt.ChannelwiseScaling(16),
                         nt.ReLU(), nt.Linear(16, CLASSES))


def run_batch_norm(norm=nt.SyncBatchNormalization, n=962):
    """SGD with momentum; 962 samples in batches of 64: the last holds 2, fewer than 3 processes."""
    X, y = dataset(n)
    model = batch_norm_net(norm)
    history = fit(model, nt.CrossEntropyCriterion(), SGD(model, lr=0.05, momentum=0.9), (X, y),
                  val=dataset(200, seed=1), epochs=2, batch_size=64, seed=5, progress=False)
    return model, {"history": history}


def run_per_rank_batch_norm():
    """Per-rank statistics need two samples on every rank: the last batch holds 6."""
    return run_batch_norm(nt.BatchNormalization, n=966)


def run_loop():
    """The notebook's loop: its own batches, ``sgd_momentum``, one ``average_gradients`` after backward."""
    X, y = dataset(700)
    model = mlp(seed=3)
    criterion = nt.CrossEntropyCriterion()
    config, state = {"learning_rate": 0.05, "momentum": 0.9}, {}
    batches = [(X[i:i + 64], y[i:i + 64]) for i in range(0, len(X), 64)]
    for _ in range(2):
        for xb, yb in distributed.shard(batches):
            model.zeroGradParameters()
            output = model.forward(xb)
            criterion.forward(output, yb)
            model.backward(xb, criterion.backward(output, yb))
            distributed.average_gradients(model, len(yb))
            sgd_momentum(model.getParameters(), model.getGradParameters(), config, state)
    return model, {}


class MaskSpy(nt.Dropout):
    """Dropout that keeps every mask it drew."""

    def __init__(self, p=0.5):
        super().__init__(p)
        self.masks = []

    def updateOutput(self, input):
        super().updateOutput(input)
        if self.mask is not None:
            self.masks.append(self.mask)
        return self.output


def dropout_run(folder, epochs, resume):
    X, y = dataset(400)
    nt.manual_seed(6)
    spy = MaskSpy(0.5)
    model = nt.Sequential(nt.Linear(12, 64), nt.ReLU(), spy, nt.Linear(64, CLASSES))
    fit(model, nt.CrossEntropyCriterion(), SGD(model, lr=0.05), (X, y), epochs=epochs, batch_size=40,
        seed=7, checkpoint=folder / "dropout-checkpoint.npz", resume=resume, progress=False)
    return model, spy


def run_dropout(folder):
    """Masks differ between ranks; a run resumed with the same processes equals an uninterrupted one."""
    uninterrupted, spy = dropout_run(folder, 3, resume=False)
    first_masks = distributed.allgather(spy.masks[0])
    if distributed.is_root():
        (folder / "dropout-checkpoint.npz").unlink()
    dropout_run(folder, 2, resume=False)
    resumed, _ = dropout_run(folder, 3, resume=True)
    assert all(np.array_equal(a, b) for a, b in zip(arrays(uninterrupted), arrays(resumed))), \
        "a resumed run with Dropout differs from the uninterrupted one"
    return resumed, {"first_masks": np.concatenate(first_masks)}


class FailOnRank1(nt.Module):
    """Identity, except that rank 1 raises (or is killed) at its third training forward."""

    def __init__(self, how):
        super().__init__()
        self.how, self.calls = how, 0

    def updateOutput(self, input):
        self.calls += 1
        if distributed.rank() == 1 and self.calls == 3:
            print(f"failing at {time.time()!r}", file=sys.stderr, flush=True)
            if self.how == "kill":
                os.kill(os.getpid(), signal.SIGKILL)
            raise ValueError("rank 1 found a corrupt sample in its third batch")
        self.output = input.copy()
        return self.output

    def updateGradInput(self, input, gradOutput):
        self.gradInput = gradOutput.copy()
        return self.gradInput


def run_fault(how):
    X, y = dataset(400)
    model = nt.Sequential(nt.Linear(12, 8), FailOnRank1(how), nt.Linear(8, CLASSES))
    fit(model, nt.CrossEntropyCriterion(), SGD(model, lr=0.1), (X, y), epochs=2, batch_size=20,
        progress=False)
    raise AssertionError("rank 1 did not fail")


def run_cli_fault(folder):
    """``numtorch train`` whose network fails on rank 1: the command's own error path must end the job."""
    from numtorch import cli, models

    build = models.build

    def failing_build(*args):
        model, shape = build(*args)
        return model.add(FailOnRank1("raise")), shape

    models.build = failing_build
    sys.exit(cli.main(["train", "--hidden", "16", "--epochs", "2", "--no-progress", "--out", str(folder)]))


SCENARIOS = {"fit": run_fit, "sync_batch_norm": run_batch_norm, "batch_norm": run_per_rank_batch_norm,
             "loop": run_loop}


FAULTS = {"fault": lambda folder: run_fault("raise"), "kill": lambda folder: run_fault("kill"),
          "cli_fault": run_cli_fault}


def main(folder, names):
    folder = pathlib.Path(folder)
    for name in names:
        if name in FAULTS:
            FAULTS[name](folder)
        model, record = run_dropout(folder) if name == "dropout" else SCENARIOS[name]()
        same_on_every_rank(model)
        if distributed.is_root():
            extra = {key: value for key, value in record.items() if isinstance(value, np.ndarray)}
            meta = json.dumps({key: value for key, value in record.items() if key not in extra})
            np.savez(folder / f"{name}.npz", *arrays(model), meta=np.array(meta),
                     processes=distributed.size(), **extra)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
