"""BatchNormalization whose training statistics are those of the global batch, over all processes."""

import numpy as np

from numtorch.distributed import world
from numtorch.layers.normalization import BatchNormalization


def sum_over_step(values):
    """``values`` (a float64 vector) summed over the ranks holding samples in this step, in place."""
    comm = world.step_communicator()
    if comm is not None and comm.size > 1:
        from mpi4py import MPI

        comm.Allreduce(MPI.IN_PLACE, values, op=MPI.SUM)
    return values


class SyncBatchNormalization(BatchNormalization):
    """``BatchNormalization`` with the mean and variance of the whole global batch, across processes.

    Under ``mpiexec`` each rank holds a part of the batch; plain
    ``BatchNormalization`` normalizes every part by its own statistics (as
    Horovod and PyTorch DDP do). This layer sums, per channel, the count, the
    values and their squares over the ranks (one ``Allreduce`` of 2C + 1
    float64 values in forward) and normalizes every part by the global batch's
    mean and variance, so statistics, moving statistics and outputs are a
    single process's on the global batch (to float rounding). In a single
    process it computes what ``BatchNormalization`` does. Arguments, shapes
    and evaluation mode are ``BatchNormalization``'s.

    Backward (training): ``gradInput = (g - mean(g) - y * mean(g * y)) / sqrt(var + EPS)``
    with the means over the global batch: one more ``Allreduce`` of 2C values.
    Each rank's ``g`` is the gradient of its own mean loss, which
    ``average_gradients`` later weights by the rank's share ``n_r / n`` of the
    samples, so the sums are taken of ``n_r * g`` and divided by ``n * n_r``.
    """

    global_count = None  # samples per channel of the last training batch, all ranks together

    def batch_statistics(self, input, axes):
        count = input.size // input.shape[1]
        sums = np.concatenate([[count], input.sum(axis=axes, dtype=np.float64),
                               np.square(input, dtype=np.float64).sum(axis=axes)])
        sum_over_step(sums)
        self.global_count = int(sums[0])
        mean = sums[1:1 + input.shape[1]] / sums[0]
        variance = np.maximum(sums[1 + input.shape[1]:] / sums[0] - mean * mean, 0)
        return mean.astype(input.dtype), variance.astype(input.dtype), self.global_count

    def gradient_means(self, gradOutput, normalized, axes):
        count = gradOutput.size // gradOutput.shape[1]
        sums = np.concatenate([gradOutput.sum(axis=axes, dtype=np.float64),
                               (gradOutput * normalized).sum(axis=axes, dtype=np.float64)]) * count
        sum_over_step(sums)
        sums /= self.global_count * count
        shape = [1] * gradOutput.ndim
        shape[1] = gradOutput.shape[1]
        mean_grad, mean_grad_normalized = (half.astype(gradOutput.dtype).reshape(shape)
                                           for half in np.split(sums, 2))
        return mean_grad, mean_grad_normalized

    def __repr__(self):
        return "Sync" + super().__repr__()
