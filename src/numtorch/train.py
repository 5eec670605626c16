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

import math
import os
import signal
import threading
from collections import namedtuple
from contextlib import contextmanager
from types import SimpleNamespace

import numpy as np

from numtorch import distributed
from numtorch._checks import check_positive_int
from numtorch.criterions import CrossEntropyCriterion
from numtorch.data.datasets import check_pair
from numtorch.data.loader import Batches
from numtorch.io import load_checkpoint, save_checkpoint
from numtorch.module import Criterion, Module, flatten
from numtorch.optim import LRScheduler, Optimizer, clip_grad_norm
from numtorch.threads import ThreadTuner, tuned_steps

Evaluation = namedtuple("Evaluation", ["loss", "accuracy", "confusion"])
Evaluation.__doc__ = "``loss`` (mean over samples), ``accuracy`` in [0, 1], ``confusion[true, predicted]``."

HISTORY_KEYS = ("epoch", "lr", "train_loss", "train_accuracy", "val_loss", "val_accuracy")

Position = namedtuple("Position", ["epoch", "batch"])
Position.__doc__ = "Where a checkpoint stands: ``epoch`` whole epochs done, ``batch`` batches of the next."


def describe(position):
    """``at epoch 3`` or ``in epoch 4, after batch 7``."""
    if position.batch:
        return f"in epoch {position.epoch + 1}, after batch {position.batch}"
    return f"at epoch {position.epoch}"


class Diverged(FloatingPointError):
    """``fit`` stopped at the first non-finite training loss, weights or validation loss.

    ``where``: what was found and where (``the loss is nan at epoch 2, batch 5 of 21``); ``lr``:
    the learning rate then; ``saved``: the ``Position`` the checkpoint file holds, untouched by the
    failure (None: no checkpoint).
    """

    def __init__(self, where, lr):
        super().__init__(f"fit: training diverged: {where} (lr={lr:g}: try a smaller learning rate, "
                         "or clip_norm)")
        self.where, self.lr, self.saved = where, lr, None


class Interrupted(KeyboardInterrupt):
    """Ctrl-C stopped ``fit``; ``saved``: the ``Position`` the checkpoint file holds (None: none)."""

    def __init__(self, saved):
        super().__init__("fit: interrupted" + ("" if saved is None else f"; checkpoint {describe(saved)}"))
        self.saved = saved


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


def progress_bar(total, desc, enabled, initial=0):
    if not enabled:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        raise ImportError("progress bars need tqdm: pip install 'numtorch[train]' "
                          "(or pass progress=False)") from None
    return tqdm(total=total, desc=desc, unit="batch", dynamic_ncols=True, initial=initial)


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


def train_epoch(model, criterion, optimizer, steps, n_batches, clip_norm, bar, sums, epoch, stop):
    """One pass of updates over ``steps`` (the epoch's batches, or the rest of them, resumed), adding
    this rank's figures into ``sums`` as it goes.

    ``sums``: the pass's ``batches`` done, and this rank's ``loss_sum`` (loss times batch size),
    ``correct`` and ``seen`` so far. Returns False when ``stop.requested`` cut the pass short
    (``sums`` then describes the batches done), True at its end.
    """
    model.train()
    for xb, yb in distributed.shard(steps):
        optimizer.zero_grad()
        if len(yb):  # under mpiexec a batch smaller than the number of ranks leaves some without samples
            output = model.forward(xb)
            loss = criterion.forward(output, yb)
            if not math.isfinite(loss):
                # Where training stops on the first non-finite loss, before a step spreads it into the
                # weights. (Under mpiexec the error of this rank ends the whole job.)
                raise Diverged(f"the loss is {loss} at epoch {epoch}, batch {sums['batches'] + 1} of "
                               f"{n_batches}", optimizer.lr)
            model.backward(xb, criterion.backward(output, yb))
            sums["loss_sum"] += loss * len(yb)
            sums["correct"] += int(np.sum(output.argmax(axis=1) == yb))
            sums["seen"] += len(yb)
        distributed.average_gradients(model, len(yb))
        if clip_norm is not None:
            clip_grad_norm(model, clip_norm)
        optimizer.step()
        sums["batches"] += 1
        if bar is not None:
            bar.update()
            bar.set_postfix(loss=f"{sums['loss_sum'] / sums['seen']:.4f}",
                            acc=f"{sums['correct'] / sums['seen']:.4f}", refresh=False)
        if stop.requested and sums["batches"] < n_batches:
            return False
    return True


def run_epoch(model, criterion, optimizer, batches, tuner, val, clip_norm, bar, sums, epoch, stop):
    """The epoch's updates, then the validation pass: ``(train_loss, train_accuracy, val_loss,
    val_accuracy)``, or None when a stop request cut the updates short."""
    distributed.split_random_streams()
    with data_gradient_skipped(model), tuned_steps(tuner, batches) as steps:
        whole = train_epoch(model, criterion, optimizer, steps, len(batches), clip_norm, bar, sums, epoch,
                            stop)
    if not whole:
        return None
    loss_sum, correct, seen = distributed.sum_over_ranks(sums["loss_sum"], sums["correct"], sums["seen"])
    train_loss, train_accuracy = loss_sum / seen, correct / seen
    distributed.broadcast_buffers(model)
    val_loss = val_accuracy = None
    if val is not None:
        val_loss, val_accuracy = evaluate(model, *val, criterion=criterion)[:2]
    check_finite_after(model, epoch, val_loss, optimizer.lr)
    if bar is not None:
        summary = dict(loss=f"{train_loss:.4f}", acc=f"{train_accuracy:.4f}")
        if val is not None:
            summary.update(val_loss=f"{val_loss:.4f}", val_acc=f"{val_accuracy:.4f}")
        bar.set_postfix(summary)
    return train_loss, train_accuracy, val_loss, val_accuracy


def check_finite_after(model, epoch, val_loss, lr):
    """Stop if the weights (the last step's update) or the validation loss are no longer finite."""
    arrays = flatten(model.getParameters()) + [b for b in flatten(model.getBuffers()) if b is not None]
    if not all(np.isfinite(array).all() for array in arrays):
        raise Diverged(f"the weights hold NaN or infinity after epoch {epoch}", lr)
    if val_loss is not None and not math.isfinite(val_loss):
        raise Diverged(f"the validation loss is {val_loss} after epoch {epoch}", lr)


@contextmanager
def ctrl_c_between_steps(enabled):
    """Inside the block a first Ctrl-C only sets ``stop.requested``, which ``fit`` reads between steps,
    where the model and the optimizer are whole and can be saved; a second Ctrl-C raises
    ``KeyboardInterrupt`` at once, as usual. Only in the main thread, over Python's own handler
    (a handler of the caller's is left alone)."""
    stop = SimpleNamespace(requested=False)
    if not enabled or threading.current_thread() is not threading.main_thread() \
            or signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        yield stop
        return

    def note(signum, frame):
        stop.requested = True
        signal.signal(signal.SIGINT, signal.default_int_handler)

    signal.signal(signal.SIGINT, note)
    try:
        yield stop
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)


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
    sums = state.get("epoch_sums")
    if sums is not None:
        valid = (isinstance(sums, dict) and sums.keys() == {"batches", "loss_sum", "correct", "seen"}
                 and all(type(sums[key]) is int and sums[key] >= 0 for key in ("batches", "correct", "seen"))
                 and type(sums["loss_sum"]) in (int, float) and math.isfinite(sums["loss_sum"])
                 and sums["batches"] >= 1 and sums["batches"] == state["batches"].get("batch"))
        if not valid:
            raise refuse("the sums of the epoch under way do not fit its batch order state")
    if scheduler is not None:
        scheduler.check_state_dict(state.get("scheduler"))


def fit(model, criterion, optimizer, train, val=None, epochs=10, batch_size=64, seed=0, scheduler=None,
        clip_norm=None, checkpoint=None, resume=False, progress=True, threads="auto", run_info=None):
    """Train ``model`` on ``train = (X, y)`` for ``epochs`` epochs of shuffled mini-batches.

    Each epoch draws a new order from a generator seeded with ``seed``; after
    it, ``val = (X, y)`` (if given) is measured in evaluation mode and
    ``scheduler.step()`` runs. ``clip_norm`` clips the gradient norm of every step.
    ``checkpoint``: a path written after every epoch (model, optimizer, RNG,
    batch order, schedule, history); with ``resume=True`` and that file
    present, training continues where it stopped, ending with the same
    weights an uninterrupted run would; ``run_info``, a dict of JSON values
    (``numtorch train`` keeps its settings there), is written into every
    checkpoint as ``state["run_info"]``. ``progress``: tqdm bars with the running
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

    Ctrl-C: with a ``checkpoint`` (and in one process), the first one stops
    training at the end of the step under way, writes the checkpoint there
    (inside an epoch too: a resume continues with the next batch, bit for bit)
    and raises ``Interrupted``; a second one stops at once. Training stops
    with ``Diverged`` at the first non-finite training loss (before its step),
    or non-finite weights or validation loss after an epoch; the checkpoint
    then keeps the last good state. Both exceptions say in ``saved`` the
    ``Position`` the checkpoint file holds (None without one).

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
    first, sums, saved = 1, None, None
    # Rank 0 decides: a rank that does not see rank 0's checkpoint fails to load it, it does not start afresh.
    if resume and distributed.broadcast(os.path.exists(checkpoint)):
        def check(done, state):
            check_resumed(checkpoint, done, state, scheduler)
            sums = state.get("epoch_sums")
            if done + (sums is not None) > epochs:
                raise ValueError(f"fit: the checkpoint {checkpoint} is "
                                 f"{describe(Position(done, sums['batches'] if sums else 0))}, beyond "
                                 f"epochs={epochs}")

        done, state = load_checkpoint(checkpoint, model, optimizer, check=check)
        batches.load_state_dict(state["batches"])
        if scheduler is not None:
            scheduler.load_state_dict(state["scheduler"])
        history, sums = state["history"], state.get("epoch_sums")
        saved = Position(done, sums["batches"] if sums else 0)
        if sums and not distributed.is_root():  # the figures so far are counted once, on rank 0
            sums = {**sums, "loss_sum": 0.0, "correct": 0, "seen": 0}
        first = done + 1
    distributed.broadcast_parameters(model)

    def write_checkpoint(done, sums):
        if distributed.is_root():
            save_checkpoint(checkpoint, model, optimizer, done, batches=batches.state_dict(), history=history,
                            scheduler=None if scheduler is None else scheduler.state_dict(), epoch_sums=sums,
                            run_info=run_info)
        return Position(done, sums["batches"] if sums else 0)

    try:
        # Ctrl-C waits for a step's end in one process; under mpiexec the ranks could not agree on which.
        with ctrl_c_between_steps(checkpoint is not None and distributed.size() == 1) as stop:
            for epoch in range(first, epochs + 1):
                lr = optimizer.lr
                sums = sums or {"batches": 0, "loss_sum": 0.0, "correct": 0, "seen": 0}
                shown = progress and distributed.is_root()
                bar = progress_bar(len(batches), f"epoch {epoch}/{epochs}", shown, initial=sums["batches"])
                try:
                    results = run_epoch(model, criterion, optimizer, batches, tuner, val, clip_norm, bar,
                                        sums, epoch, stop)
                finally:
                    if bar is not None:
                        bar.close()
                if results is None:
                    saved = write_checkpoint(epoch - 1, sums)
                    raise Interrupted(saved)
                if scheduler is not None:
                    scheduler.step()
                for key, value in zip(HISTORY_KEYS, (epoch, lr, *results)):
                    history[key].append(value)
                sums = None
                if checkpoint is not None:
                    saved = write_checkpoint(epoch, None)
                if stop.requested:
                    raise Interrupted(saved)
    except Interrupted:
        raise
    except KeyboardInterrupt:
        raise Interrupted(saved) from None
    except Diverged as error:
        error.saved = saved
        raise
    return history
