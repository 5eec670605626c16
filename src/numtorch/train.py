"""The training loop: ``fit`` with progress bars and checkpoints, ``evaluate`` with a confusion matrix.

One step is Torch7's: ``zeroGradParameters`` -> forward -> criterion ->
backward -> ``optimizer.step()``. ``fit`` puts the model in training mode
for each epoch's updates and in evaluation mode while it measures the
validation set. Progress bars need tqdm (``pip install 'numtorch[train]'``).

Under ``mpiexec`` both are data parallel (``numtorch.distributed``): every
rank calls them with the same arguments and the whole data; each takes its
part of every global batch, the gradients are averaged after ``backward``,
the metrics summed over the ranks, and rank 0 alone shows progress and
writes checkpoints.
"""

import os
from collections import namedtuple
from contextlib import contextmanager

import numpy as np

from numtorch import distributed
from numtorch._checks import check_positive_int
from numtorch.criterions import CrossEntropyCriterion
from numtorch.data.datasets import check_pair
from numtorch.data.loader import Batches
from numtorch.io import load_checkpoint, save_checkpoint
from numtorch.module import Criterion, Module
from numtorch.optim import LRScheduler, Optimizer, clip_grad_norm
from numtorch.threads import ThreadTuner, tuned_steps

Evaluation = namedtuple("Evaluation", ["loss", "accuracy", "confusion"])
Evaluation.__doc__ = "``loss`` (mean over samples), ``accuracy`` in [0, 1], ``confusion[true, predicted]``."

HISTORY_KEYS = ("epoch", "lr", "train_loss", "train_accuracy", "val_loss", "val_accuracy")


def evaluate(model, X, y, criterion=None, batch_size=1000):
    """Loss, accuracy and confusion matrix of a classifier on ``(X, y)``, in evaluation mode.

    ``criterion`` defaults to ``CrossEntropyCriterion`` (for a model that ends in
    raw scores or LogSoftMax). The loss is the mean over all samples; the
    prediction is the arg-max output; ``confusion`` is (C, C), C the number of
    outputs. The model's mode is restored afterwards. Under ``mpiexec`` each
    rank measures its ``distributed.part`` of the samples.
    Returns an ``Evaluation(loss, accuracy, confusion)``.
    """
    n = check_pair("evaluate", X, y)
    batch_size = check_positive_int("evaluate", batch_size, "batch_size")
    criterion = CrossEntropyCriterion() if criterion is None else criterion
    mine = distributed.part(n)
    was_training = model.training
    model.evaluate()
    try:
        total, outputs, width = 0.0, [], 0
        for start in range(mine.start, mine.stop, batch_size):
            stop = min(start + batch_size, mine.stop)
            output = model.forward(X[start:stop])
            total += criterion.forward(output, y[start:stop]) * len(output)
            outputs.append(output.argmax(axis=1))
            width = output.shape[1]
    finally:
        if was_training:
            model.train()
    ranks = distributed.allgather((total, outputs, width))
    total = sum(part_total for part_total, _, _ in ranks)
    predicted = np.concatenate([p for _, part_outputs, _ in ranks for p in part_outputs])
    classes = max(int(y.max()) + 1, *(part_width for _, _, part_width in ranks))
    confusion = np.bincount(y * classes + predicted, minlength=classes * classes).reshape(classes, classes)
    return Evaluation(total / n, float(np.mean(predicted == y)), confusion)


def progress_bar(total, desc, enabled):
    if not enabled:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        raise ImportError("progress bars need tqdm: pip install 'numtorch[train]' "
                          "(or pass progress=False)") from None
    return tqdm(total=total, desc=desc, unit="batch", dynamic_ncols=True)


def check_fit_arguments(model, criterion, optimizer, scheduler, epochs):
    if not isinstance(model, Module):
        raise TypeError(f"fit: expected model as a numtorch Module, got {type(model).__name__}")
    if not isinstance(criterion, Criterion):
        raise TypeError(f"fit: expected criterion as a numtorch Criterion, got {type(criterion).__name__}")
    if not isinstance(optimizer, Optimizer):
        raise TypeError(f"fit: expected optimizer as a numtorch Optimizer, got {type(optimizer).__name__}")
    if optimizer.model is not model:
        raise ValueError("fit: the optimizer is bound to another model")
    if scheduler is not None and not isinstance(scheduler, LRScheduler):
        raise TypeError(f"fit: expected scheduler as a numtorch LRScheduler, got {type(scheduler).__name__}")
    if scheduler is not None and scheduler.optimizer is not optimizer:
        raise ValueError("fit: the scheduler drives another optimizer")
    if isinstance(epochs, bool) or not isinstance(epochs, (int, np.integer)) or epochs < 0:
        raise ValueError(f"fit: expected epochs as an int >= 0, got {epochs!r}")


@contextmanager
def data_gradient_skipped(model):
    """``model.needs_input_grad`` is False inside the block (nobody reads the gradient with respect to
    the training data), then what it was, even if the block raises."""
    needed = model.needs_input_grad
    model.needs_input_grad = False
    try:
        yield
    finally:
        model.needs_input_grad = needed


def train_epoch(model, criterion, optimizer, batches, clip_norm, bar):
    """One pass of updates; returns the mean training loss and accuracy of the pass."""
    model.train()
    total_loss, correct, seen = 0.0, 0, 0
    for xb, yb in distributed.shard(batches):
        optimizer.zero_grad()
        if len(yb):  # under mpiexec a batch smaller than the number of ranks leaves some without samples
            output = model.forward(xb)
            loss = criterion.forward(output, yb)
            model.backward(xb, criterion.backward(output, yb))
            total_loss += loss * len(yb)
            correct += int(np.sum(output.argmax(axis=1) == yb))
            seen += len(yb)
        distributed.average_gradients(model, len(yb))
        if clip_norm is not None:
            clip_grad_norm(model, clip_norm)
        optimizer.step()
        if bar is not None:
            bar.update()
            bar.set_postfix(loss=f"{total_loss / seen:.4f}", acc=f"{correct / seen:.4f}", refresh=False)
    total_loss, correct, seen = distributed.sum_over_ranks(total_loss, correct, seen)
    return total_loss / seen, correct / seen


def check_resumed(path, done, state, scheduler):
    """Refuse a checkpoint whose state ``fit`` cannot continue from (before it changes anything)."""
    def refuse(what):
        return ValueError(f"{path}: not a checkpoint fit can resume: {what}")

    if not isinstance(state.get("batches"), dict):
        raise refuse("no batch order state")
    try:
        np.random.PCG64().state = state["batches"].get("rng")
    except (TypeError, ValueError, KeyError, OverflowError) as error:
        raise refuse(f"the batch order state is not a generator state ({error})") from None
    history = state.get("history")
    if not isinstance(history, dict) or any(not isinstance(history.get(key), list)
                                            or len(history[key]) != done for key in HISTORY_KEYS):
        raise refuse(f"expected a history of {done} epochs under {list(HISTORY_KEYS)}")
    if scheduler is not None:
        scheduler.check_state_dict(state.get("scheduler"))


def fit(model, criterion, optimizer, train, val=None, epochs=10, batch_size=64, seed=0, scheduler=None,
        clip_norm=None, checkpoint=None, resume=False, progress=True, threads="auto"):
    """Train ``model`` on ``train = (X, y)`` for ``epochs`` epochs of shuffled mini-batches.

    Each epoch draws a new order from a generator seeded with ``seed``; after
    it, ``val = (X, y)`` (if given) is measured in evaluation mode and
    ``scheduler.step()`` runs. ``clip_norm`` clips the gradient norm of every step.
    ``checkpoint``: a path written after every epoch (model, optimizer, RNG,
    batch order, schedule, history); with ``resume=True`` and that file
    present, training continues after the epoch it holds, ending with the same
    weights an uninterrupted run would. ``progress``: tqdm bars with the running
    loss and accuracy, one line left per epoch. The training steps skip the
    gradient with respect to the data (``model.needs_input_grad`` is False
    during them, then restored): nobody reads it. ``threads``: the BLAS thread
    count of the training steps; "auto" measures a few steps with each
    candidate count and measures again when step times drift (see
    ``numtorch.threads``), an int fixes it, None leaves it alone; the count in
    effect before is set back after every epoch. Results are bit-identical
    only with the same count: pass an int for runs to reproduce to the bit.

    Under ``mpiexec`` (see the module's docstring) ``batch_size`` is the global
    batch: N processes end with the weights one process computes, to float
    rounding, for networks without Dropout and BatchNormalization
    (``SyncBatchNormalization`` keeps that equality). Each epoch every rank
    draws from its own random stream (``distributed.split_random_streams``), and
    after it every rank takes rank 0's BatchNorm moving statistics. The bar's
    running figures are rank 0's part; the epoch's figures and the history are
    the global batch's. A checkpoint written by any number of processes resumes
    with any other.

    Returns the history: a dict of lists ``epoch``, ``lr``, ``train_loss``,
    ``train_accuracy``, ``val_loss``, ``val_accuracy`` (``None`` without ``val``).
    """
    check_fit_arguments(model, criterion, optimizer, scheduler, epochs)
    for name, pair in (("train", train), ("val", val)):
        if pair is not None and (not isinstance(pair, (tuple, list)) or len(pair) != 2):
            raise TypeError(f"fit: expected {name} as a pair (X, y), got {type(pair).__name__}")
    batches = Batches(*train, batch_size, shuffle=True, seed=seed)
    tuner = ThreadTuner.for_fit(threads)
    if val is not None:
        check_pair("fit: val", *val)
    if resume and checkpoint is None:
        raise ValueError("fit: resume=True needs the checkpoint path to resume from")
    history = {key: [] for key in HISTORY_KEYS}
    first = 1
    # Rank 0 decides: a rank that does not see rank 0's checkpoint fails to load it, it does not start afresh.
    if resume and distributed.broadcast(os.path.exists(checkpoint)):
        def check(done, state):
            check_resumed(checkpoint, done, state, scheduler)

        done, state = load_checkpoint(checkpoint, model, optimizer, check=check)
        batches.load_state_dict(state["batches"])
        if scheduler is not None:
            scheduler.load_state_dict(state["scheduler"])
        history = state["history"]
        first = done + 1
    distributed.broadcast_parameters(model)
    for epoch in range(first, epochs + 1):
        lr = optimizer.lr
        bar = progress_bar(len(batches), f"epoch {epoch}/{epochs}", progress and distributed.is_root())
        try:
            distributed.split_random_streams()
            with data_gradient_skipped(model), tuned_steps(tuner, batches) as steps:
                train_loss, train_accuracy = train_epoch(model, criterion, optimizer, steps, clip_norm, bar)
            distributed.broadcast_buffers(model)
            val_loss = val_accuracy = None
            if val is not None:
                val_loss, val_accuracy = evaluate(model, *val, criterion=criterion)[:2]
            if bar is not None:
                summary = dict(loss=f"{train_loss:.4f}", acc=f"{train_accuracy:.4f}")
                if val is not None:
                    summary.update(val_loss=f"{val_loss:.4f}", val_acc=f"{val_accuracy:.4f}")
                bar.set_postfix(summary)
        finally:
            if bar is not None:
                bar.close()
        if scheduler is not None:
            scheduler.step()
        for key, value in zip(HISTORY_KEYS, (epoch, lr, train_loss, train_accuracy, val_loss, val_accuracy)):
            history[key].append(value)
        if checkpoint is not None and distributed.is_root():
            save_checkpoint(checkpoint, model, optimizer, epoch, batches=batches.state_dict(),
                            history=history, scheduler=None if scheduler is None else scheduler.state_dict())
    return history
