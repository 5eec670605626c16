"""Data parallelism: every rank computes the gradient of its part of each global batch, then they average.

The gradient of a step is the one a single process computes on the whole
global batch: each rank's gradient (the mean over its own samples, as
numtorch's criterions give) is weighted by its share of the samples, so an
uneven last batch counts every sample once.
"""

import numpy as np

from numtorch._checks import check_int
from numtorch.distributed import world
from numtorch.module import Module, flatten
from numtorch.random import get_rng_state, set_rng_state


def part(n, rank=None, size=None):
    """This rank's slice of ``n`` items: contiguous parts of ``n // size`` or one more, in rank order.

    The first ``n % size`` ranks take one item more (``np.array_split``'s rule);
    with ``n < size`` the last ranks get an empty slice.
    """
    rank = world.rank() if rank is None else rank
    size = world.size() if size is None else size
    base, extra = divmod(n, size)
    start = rank * base + min(rank, extra)
    return slice(start, start + base + (rank < extra))


def shard(batches):
    """This rank's part of every global batch ``(X, y)`` that ``batches`` yields.

    Every rank iterates over the same global batches (the same seed gives the
    same order) and keeps its ``part`` of each, so the global batch is what
    one process would use. A rank's part may be empty when a batch has fewer
    samples than there are processes. In a single process: ``batches`` itself.
    """
    if world.size() == 1:
        yield from batches
        return
    try:
        for X, y in batches:
            world.hold_step(min(len(y), world.size()))
            mine = part(len(y))
            yield X[mine], y[mine]
    finally:
        world.hold_step(world.size())


def _check_model(who, model):
    if not isinstance(model, Module):
        raise TypeError(f"{who}: expected a numtorch Module, got {type(model).__name__}")


def broadcast_parameters(model, root=0):
    """Copy rank ``root``'s parameters and buffers into every rank's ``model``, in place."""
    _check_model("broadcast_parameters", model)
    _broadcast(flatten(model.getParameters()) + flatten(model.getBuffers()), root)


def _broadcast(arrays, root):
    if world.size() == 1:
        return
    comm = world.init()
    for array in arrays:
        if array is not None:  # a BatchNorm buffer created at its first forward
            comm.Bcast(array, root=root)


_buffers = {}


def flat_buffer(dtype, length):
    """A kept buffer of ``length`` values, reused from step to step (no new pages each step)."""
    key = (np.dtype(dtype), length)
    if key not in _buffers:
        _buffers[key] = np.empty(length, dtype)
    return _buffers[key]


def average_gradients(model, samples=None):
    """Replace every rank's gradients by their average over the ranks, with ONE ``Allreduce``.

    Call it after ``backward`` and before the optimizer's step. ``samples``:
    the number of samples this rank's gradient is the mean of (``len(xb)``);
    each rank's gradient is then weighted by its share of the step's samples,
    so uneven parts (a last batch) give the global batch's gradient. ``None``:
    every rank weighs the same (the plain mean, right when all parts are of
    one size). In a single process it does nothing.

    The gradients are copied (times ``samples``) into one contiguous buffer
    whose last value is the sample count, summed in place across the ranks
    (``MPI.IN_PLACE``) and copied back divided by the total count. Gradient
    arrays that were views into the buffer would save the copies, but the
    weighting still needs the same two passes over the buffer, and views would
    rebind arrays that optimizers hold (the benchmark times both:
    ``python -m benchmarks.distributed``).
    """
    _check_model("average_gradients", model)
    weight = 1 if samples is None else check_int("average_gradients", samples, "samples")
    grads = flatten(model.getGradParameters())
    if world.size() == 1 or not grads:
        return
    buffer = flat_buffer(np.result_type(*grads), sum(g.size for g in grads) + 1)
    offset = 0
    for grad in grads:
        np.multiply(grad, weight, out=buffer[offset:offset + grad.size].reshape(grad.shape))
        offset += grad.size
    buffer[-1] = weight
    reduce_in_place(buffer)
    total = buffer[-1]
    if total == 0:
        raise ValueError("average_gradients: no rank had samples (expected samples >= 1 on some rank)")
    offset = 0
    for grad in grads:
        np.divide(buffer[offset:offset + grad.size].reshape(grad.shape), total, out=grad)
        offset += grad.size


def reduce_in_place(buffer):
    """Sum ``buffer`` over the ranks, in place (the one ``Allreduce`` of a step)."""
    from mpi4py import MPI

    world.init().Allreduce(MPI.IN_PLACE, buffer, op=MPI.SUM)


def broadcast_buffers(model, root=0):
    """Copy rank ``root``'s buffers (BatchNorm's moving statistics) into every rank's ``model``.

    With per-rank ``BatchNormalization`` each rank's moving statistics follow
    its own parts of the batches, and a rank without samples in a step skips
    that step's update; ``fit`` copies rank 0's (which holds samples in every
    step) to all ranks after every epoch, as PyTorch DDP's
    ``broadcast_buffers`` does, so all ranks evaluate, checkpoint and save one
    model. ``SyncBatchNormalization``'s are already the global batch's.
    """
    _check_model("broadcast_buffers", model)
    _broadcast(flatten(model.getBuffers()), root)


def split_random_streams():
    """Give every rank its own stream of numtorch's generator, derived from rank 0's state.

    Rank 0 keeps its generator; rank r > 0 continues from a generator seeded
    with rank 0's current state and r. ``fit`` calls it at the start of every
    epoch, so Dropout masks differ between ranks (no two ranks drop the same
    units of their parts) and a run resumed from a checkpoint (which holds
    rank 0's state) with the same number of processes draws the same masks.
    """
    if world.size() == 1:
        return
    state = world.broadcast(get_rng_state())
    if world.rank() > 0:
        pcg = state["state"]
        seed = np.random.SeedSequence([pcg["state"], pcg["inc"], world.rank()])
        set_rng_state(np.random.PCG64(seed).state)


def sum_over_ranks(*values):
    """The sums over the ranks of each of ``values`` (numbers), as floats, added in rank order."""
    return tuple(float(sum(column)) for column in zip(*world.allgather(values)))
