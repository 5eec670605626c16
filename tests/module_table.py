"""The table of every module and criterion, checked by ``harness.py``.

Adding a layer to numtorch means adding one row here: how to build it with a
random shape, and how PyTorch computes the same thing. References import
torch lazily (``F`` is ``torch.nn.functional``), so the table loads without it.
"""

import numpy as np

import numtorch as nt
from harness import CriterionCase, ModuleCase


def F():
    import torch.nn.functional

    return torch.nn.functional


def T():
    import torch

    return torch


def features(rng, batch, low=1, high=12):
    """A random (batch, C) input, C drawn from [low, high)."""
    return rng.standard_normal((batch, int(rng.integers(low, high)))) * 2


def elementwise(name, make, reference, **kwargs):
    """A row for a layer with no parameters applied to a random (N, C) input."""
    return ModuleCase(name, lambda rng, batch: (make(), features(rng, batch)), reference, **kwargs)


def linear(rng, batch):
    n_in, n_out = (int(v) for v in rng.integers(1, 20, size=2))
    return nt.Linear(n_in, n_out, bias=bool(rng.integers(2))), rng.standard_normal((batch, n_in))


def image(rng, batch, channels, height, width):
    return rng.standard_normal((batch, channels, height, width))


def spatial_size(rng, kernel, padding, extra=5):
    """A random size the (kernel, padding) window fits in, from 1 up."""
    return int(rng.integers(max(1, kernel - 2 * padding), kernel + extra))


def conv2d(rng, batch):
    kernel = tuple(int(k) for k in rng.integers(1, 6, size=2))
    stride = tuple(int(s) for s in rng.integers(1, 4, size=2))
    padding = tuple(int(p) for p in rng.integers(0, 3, size=2))
    c_in, c_out = (int(c) for c in rng.integers(1, 5, size=2))
    h, w = (spatial_size(rng, k, p) for k, p in zip(kernel, padding))
    module = nt.Conv2d(c_in, c_out, kernel, stride, padding, bias=bool(rng.integers(2)))
    return module, image(rng, batch, c_in, h, w)


def conv2d_default_padding(rng, batch):
    """Default padding (k // 2) for odd, even and mixed kernels (an odd kernel keeps H and W)."""
    kernel = tuple(int(k) for k in rng.integers(1, 7, size=2))
    c_in, c_out = (int(c) for c in rng.integers(1, 4, size=2))
    h, w = (int(s) for s in rng.integers(1, 8, size=2))
    return nt.Conv2d(c_in, c_out, kernel), image(rng, batch, c_in, h, w)


def conv2d_default_padding_reference(m, x, p, b):
    """The documented default, k // 2 on each axis, computed here rather than read from the module."""
    kh, kw = p[0].shape[2:]
    return F().conv2d(x, p[0], p[1], padding=(kh // 2, kw // 2))


def pooling(make, tiled):
    """A row builder for a pooling layer: random kernel/stride/padding, or exactly tiling windows."""

    def build(rng, batch):
        kernel = tuple(int(k) for k in rng.integers(1, 5, size=2))
        channels = int(rng.integers(1, 4))
        if tiled:
            h, w = (k * int(rng.integers(1, 4)) for k in kernel)
            return make(kernel), image(rng, batch, channels, h, w)
        stride = tuple(int(s) for s in rng.integers(1, 4, size=2))
        padding = tuple(int(rng.integers(0, k // 2 + 1)) for k in kernel)
        h, w = (spatial_size(rng, k, p) for k, p in zip(kernel, padding))
        return make(kernel, stride, padding), image(rng, batch, channels, h, w)

    return build


def images(rng, batch, channels):
    """A random (batch, channels, H, W) input, H and W in [1, 5] with H * W >= 2."""
    h, w = (int(v) for v in rng.integers(1, 6, size=2))
    return rng.standard_normal((batch, channels, h, max(w, 3 - h)))


def dropout(rng, batch):
    return nt.Dropout(float(rng.uniform(0, 0.9))), features(rng, batch)


def dropout_4d(rng, batch):
    return nt.Dropout(float(rng.uniform(0, 0.9))), images(rng, batch, int(rng.integers(1, 4)))


def dropout_reference(m, x, p, b):
    """Training: the mask the module drew (checked statistically in test_dropout.py)."""
    if m.training:
        import torch

        return x * torch.tensor(m.mask)
    return F().dropout(x, m.p, training=False)


def batch_norm(rng, input):
    module = nt.BatchNormalization(float(rng.uniform(0, 1)), n_features=input.shape[1])
    module.moving_mean[:] = rng.standard_normal(input.shape[1])
    module.moving_variance[:] = rng.uniform(0.2, 3, size=input.shape[1])
    return module, input * rng.uniform(0.5, 3) + rng.standard_normal()


def batch_norm_train(rng, batch):
    """Training needs two values per channel: a batch of one becomes two."""
    return batch_norm(rng, features(rng, max(batch, 2)))


def batch_norm_evaluate(rng, batch):
    return batch_norm(rng, features(rng, batch))


def batch_norm_4d(rng, batch):
    return batch_norm(rng, images(rng, batch, int(rng.integers(1, 5))))


def synchronised(build):
    """A BatchNormalization row's builder made to give SyncBatchNormalization (one process: same function)."""

    def build_sync(rng, batch):
        plain, x = build(rng, batch)
        module = nt.SyncBatchNormalization(plain.alpha, n_features=plain.n_features)
        module.moving_mean[:], module.moving_variance[:] = plain.moving_mean, plain.moving_variance
        return module, x

    return build_sync


def batch_norm_reference(m, x, p, b):
    """BatchNorm1d/2d without affine; PyTorch's momentum is 1 - alpha; b are the moving statistics."""
    return F().batch_norm(x, b[0], b[1], training=m.training, momentum=1 - m.alpha, eps=m.EPS)


def channelwise_scaling(ndim):
    def build(rng, batch):
        channels = int(rng.integers(1, 8))
        module = nt.ChannelwiseScaling(channels)
        module.gamma[:] = rng.standard_normal(channels)
        module.beta[:] = rng.standard_normal(channels)
        x = features(rng, batch, channels, channels + 1) if ndim == 2 else images(rng, batch, channels)
        return module, x

    return build


def flatten(rng, batch):
    shape = tuple(int(d) for d in rng.integers(1, 5, size=int(rng.integers(1, 4))))
    return nt.Flatten(), rng.standard_normal((batch, *shape))


def small_cnn(rng, batch):
    net = nt.Sequential(nt.Conv2d(2, 3, 3), nt.ReLU(), nt.MaxPool2d(2), nt.Conv2d(3, 4, 3, 1, 0),
                        nt.ReLU(), nt.AvgPool2d(2, 1), nt.Flatten(), nt.Linear(8, 3))
    return net, image(rng, batch, 2, 10, 8)


def small_cnn_reference(m, x, p, b):
    f = F()
    y = f.max_pool2d(f.relu(f.conv2d(x, p[0], p[1], padding=1)), 2)
    y = f.avg_pool2d(f.relu(f.conv2d(y, p[2], p[3])), 2, 1)
    return f.linear(y.flatten(1), p[4], p[5])


def channelwise_reference(m, x, p, b):
    shape = (1, -1) + (1,) * (x.dim() - 2)
    return x * p[0].view(shape) + p[1].view(shape)


def table_of(rng, batch, count, low=1, high=6):
    """``count`` random (batch, C) arrays of one random C."""
    width = int(rng.integers(low, high))
    return [rng.standard_normal((batch, width)) for _ in range(count)]


def concat_table(rng, batch):
    n_in, a, b = (int(v) for v in rng.integers(1, 8, size=3))
    module = nt.ConcatTable(nt.Linear(n_in, a), nt.Sequential(nt.Linear(n_in, b), nt.Tanh()), nt.Identity())
    return module, rng.standard_normal((batch, n_in))


def concat_table_reference(m, x, p, b):
    f = F()
    return [f.linear(x, p[0], p[1]), f.linear(x, p[2], p[3]).tanh(), x * 1]


def concat_table_of_tables(rng, batch):
    """A table in: every branch reads the whole table; gradInput sums the branches' tables."""
    module = nt.ConcatTable(nt.SelectTable(0), nt.CAddTable(), nt.Identity())
    return module, table_of(rng, batch, 2)


def parallel_table(rng, batch):
    n_in, n_out = (int(v) for v in rng.integers(1, 8, size=2))
    module = nt.ParallelTable(nt.Linear(n_in, n_out), nt.ReLU())
    return module, [rng.standard_normal((batch, n_in)), features(rng, batch)]


def inception(rng, batch):
    """An Inception-style block: 1x1, 3x3 and pooled branches joined along the channels."""
    c = int(rng.integers(1, 4))
    module = nt.Concat(1, nt.Conv2d(c, 2, 1),
                       nt.Sequential(nt.Conv2d(c, 2, 1), nt.ReLU(), nt.Conv2d(2, 3, 3)),
                       nt.Sequential(nt.MaxPool2d(3, 1, 1), nt.Conv2d(c, 1, 1)))
    return module, image(rng, batch, c, *(int(v) for v in rng.integers(1, 7, size=2)))


def inception_reference(m, x, p, b):
    f = F()
    first = f.conv2d(x, p[0], p[1])
    second = f.conv2d(f.relu(f.conv2d(x, p[2], p[3])), p[4], p[5], padding=1)
    third = f.conv2d(f.max_pool2d(x, 3, 1, 1), p[6], p[7])
    return T().cat([first, second, third], dim=1)


def concat_last_axis(rng, batch):
    n_in, a, b = (int(v) for v in rng.integers(1, 8, size=3))
    module = nt.Concat(-1, nt.Linear(n_in, a), nt.Linear(n_in, b, bias=False))
    return module, rng.standard_normal((batch, n_in))


def concat_last_axis_reference(m, x, p, b):
    return T().cat([F().linear(x, p[0], p[1]), F().linear(x, p[2])], dim=-1)


def residual_block(rng, batch):
    """The issue's block: ConcatTable(body, Identity) -> CAddTable -> ReLU, with BatchNorm + scaling."""
    c = int(rng.integers(1, 4))
    body = nt.Sequential(nt.Conv2d(c, c, 3), nt.BatchNormalization(0.9, n_features=c),
                         nt.ChannelwiseScaling(c), nt.ReLU(), nt.Conv2d(c, c, 3))
    body[2].gamma[:] = rng.uniform(0.5, 2, size=c)
    body[2].beta[:] = rng.standard_normal(c)
    module = nt.Sequential(nt.ConcatTable(body, nt.Identity()), nt.CAddTable(), nt.ReLU())
    height, width = (int(v) for v in rng.integers(2, 6, size=2))
    return module, image(rng, max(batch, 2), c, height, width)


def residual_block_reference(m, x, p, b):
    f = F()
    y = f.conv2d(x, p[0], p[1], padding=1)
    y = f.batch_norm(y, b[0], b[1], training=m.training, momentum=0.1, eps=nt.BatchNormalization.EPS)
    y = f.relu(y * p[2].view(1, -1, 1, 1) + p[3].view(1, -1, 1, 1))
    return f.relu(f.conv2d(y, p[4], p[5], padding=1) + x)


def same_shape_table(rng, batch):
    count = int(rng.integers(1, 5))
    shape = (batch, *(int(d) for d in rng.integers(1, 4, size=int(rng.integers(1, 4)))))
    return [rng.standard_normal(shape) for _ in range(count)]


def product(tensors):
    result = tensors[0]
    for tensor in tensors[1:]:
        result = result * tensor
    return result


def join_table(rng, batch):
    ndim = int(rng.integers(2, 5))
    dim = int(rng.integers(-ndim, ndim))
    shape = [batch, *(int(d) for d in rng.integers(1, 4, size=ndim - 1))]
    entries = []
    for _ in range(int(rng.integers(1, 4))):
        shape[dim] = batch if dim in (0, -ndim) else int(rng.integers(1, 4))
        entries.append(rng.standard_normal(shape))
    return nt.JoinTable(dim), entries


def select_table(rng, batch):
    """A nested table [a, [b, c], d]; the index picks an array or the inner table."""
    entries = [features(rng, batch), [features(rng, batch), features(rng, batch)], features(rng, batch)]
    return nt.SelectTable(int(rng.integers(-3, 3))), entries


def copy_reference(x):
    return [copy_reference(entry) for entry in x] if isinstance(x, list) else x * 1


def global_avg_pool(rng, batch):
    height, width = (int(v) for v in rng.integers(1, 6, size=2))
    return nt.GlobalAvgPool2d(), image(rng, batch, int(rng.integers(1, 5)), height, width)


MODULES = [
    ModuleCase("Linear", linear, lambda m, x, p, b: F().linear(x, *p)),
    elementwise("ReLU", nt.ReLU, lambda m, x, p, b: F().relu(x)),
    elementwise("LeakyReLU", lambda: nt.LeakyReLU(0.1),
                lambda m, x, p, b: F().leaky_relu(x, m.slope)),
    elementwise("ELU", lambda: nt.ELU(0.7), lambda m, x, p, b: F().elu(x, m.alpha)),
    elementwise("SoftPlus", nt.SoftPlus, lambda m, x, p, b: F().softplus(x)),
    elementwise("Sigmoid", nt.Sigmoid, lambda m, x, p, b: x.sigmoid()),
    elementwise("Tanh", nt.Tanh, lambda m, x, p, b: x.tanh()),
    elementwise("Identity", nt.Identity, lambda m, x, p, b: x * 1),
    elementwise("SoftMax", nt.SoftMax, lambda m, x, p, b: F().softmax(x, dim=1)),
    elementwise("LogSoftMax", nt.LogSoftMax, lambda m, x, p, b: F().log_softmax(x, dim=1)),
    ModuleCase("Conv2d", conv2d,
               lambda m, x, p, b: F().conv2d(x, p[0], p[1] if m.b is not None else None,
                                             m.stride, m.padding)),
    ModuleCase("Conv2d/default-padding", conv2d_default_padding, conv2d_default_padding_reference),
    ModuleCase("MaxPool2d", pooling(nt.MaxPool2d, tiled=False),
               lambda m, x, p, b: F().max_pool2d(x, m.kernel_size, m.stride, m.padding)),
    ModuleCase("MaxPool2d/tiled", pooling(nt.MaxPool2d, tiled=True),
               lambda m, x, p, b: F().max_pool2d(x, m.kernel_size)),
    ModuleCase("AvgPool2d", pooling(nt.AvgPool2d, tiled=False),
               lambda m, x, p, b: F().avg_pool2d(x, m.kernel_size, m.stride, m.padding)),
    ModuleCase("AvgPool2d/tiled", pooling(nt.AvgPool2d, tiled=True),
               lambda m, x, p, b: F().avg_pool2d(x, m.kernel_size)),
    ModuleCase("Flatten", flatten, lambda m, x, p, b: x.flatten(1)),
    ModuleCase(
        "Sequential",
        lambda rng, batch: (
            nt.Sequential(nt.Linear(5, 7), nt.Tanh(), nt.Linear(7, 3), nt.LogSoftMax()),
            rng.standard_normal((batch, 5)),
        ),
        lambda m, x, p, b: F().log_softmax(F().linear(F().linear(x, p[0], p[1]).tanh(), p[2], p[3]),
                                           dim=1),
    ),
    ModuleCase("Dropout", dropout, dropout_reference, modes=("train", "evaluate")),
    ModuleCase("Dropout/4d", dropout_4d, dropout_reference, modes=("train", "evaluate")),
    ModuleCase("BatchNormalization/train", batch_norm_train, batch_norm_reference,
               gradcheck_batches=(2, 3)),
    ModuleCase("BatchNormalization/evaluate", batch_norm_evaluate, batch_norm_reference,
               modes=("evaluate",)),
    ModuleCase("BatchNormalization/4d", batch_norm_4d, batch_norm_reference,
               modes=("train", "evaluate")),
    ModuleCase("SyncBatchNormalization/train", synchronised(batch_norm_train), batch_norm_reference,
               gradcheck_batches=(2, 3)),
    ModuleCase("SyncBatchNormalization/4d", synchronised(batch_norm_4d), batch_norm_reference,
               modes=("train", "evaluate")),
    ModuleCase("ChannelwiseScaling", channelwise_scaling(2), channelwise_reference),
    ModuleCase("ChannelwiseScaling/4d", channelwise_scaling(4), channelwise_reference),
    ModuleCase("Sequential/cnn", small_cnn, small_cnn_reference),
    ModuleCase("GlobalAvgPool2d", global_avg_pool, lambda m, x, p, b: x.mean(dim=(2, 3))),
    ModuleCase("ConcatTable", concat_table, concat_table_reference),
    ModuleCase("ConcatTable/table-input", concat_table_of_tables,
               lambda m, x, p, b: [x[0] * 1, sum(x[1:], x[0] * 1), copy_reference(x)]),
    ModuleCase("ParallelTable", parallel_table, lambda m, x, p, b: [F().linear(x[0], *p), F().relu(x[1])]),
    ModuleCase("Concat/inception", inception, inception_reference),
    ModuleCase("Concat/last-axis", concat_last_axis, concat_last_axis_reference),
    ModuleCase("Sequential/residual", residual_block, residual_block_reference, modes=("train", "evaluate"),
               gradcheck_batches=(2, 3)),
    ModuleCase("CAddTable", lambda rng, batch: (nt.CAddTable(), same_shape_table(rng, batch)),
               lambda m, x, p, b: sum(x[1:], x[0] * 1)),
    ModuleCase("CMulTable", lambda rng, batch: (nt.CMulTable(), same_shape_table(rng, batch)),
               lambda m, x, p, b: product(x) * 1),
    ModuleCase("JoinTable", join_table, lambda m, x, p, b: T().cat(x, dim=m.dim)),
    ModuleCase("SelectTable", select_table, lambda m, x, p, b: copy_reference(x[m.index])),
    ModuleCase("Identity/table", lambda rng, batch: (nt.Identity(), select_table(rng, batch)[1]),
               lambda m, x, p, b: copy_reference(x)),
]


def labels(rng, batch, classes):
    return rng.integers(0, classes, size=batch)


def one_hot(rng, batch, classes):
    return np.eye(classes)[labels(rng, batch, classes)]


def scores(rng, shape):
    return rng.standard_normal(shape) * 3


def probabilities(rng, shape):
    """Softmax rows, none too close to 0 (finite differences of log p stay accurate)."""
    e = np.exp(rng.standard_normal(shape) * 0.5)
    return e / e.sum(axis=1, keepdims=True)


def log_probabilities(rng, shape):
    return np.log(probabilities(rng, shape))


def scores_and_target(make, target_kind, inputs=scores):
    def build(rng, batch):
        classes = int(rng.integers(2, 10))
        target = labels(rng, batch, classes) if target_kind == "labels" else one_hot(rng, batch, classes)
        return make(), inputs(rng, (batch, classes)), target

    return build


def regression(make, inputs, targets):
    def build(rng, batch):
        shape = (batch, int(rng.integers(1, 10)))
        return make(), inputs(rng, shape), targets(rng, shape)

    return build


def classification_rows(name, make, inputs, reference, **kwargs):
    return [CriterionCase(f"{name}/{kind}", scores_and_target(make, kind, inputs), reference, **kwargs)
            for kind in ("labels", "one-hot")]


def per_sample(loss, x):
    """A PyTorch ``reduction='sum'`` loss divided by the batch size, as numtorch criterions."""
    return loss / x.shape[0]


def torch_labels(target):
    """The class indices PyTorch wants, from labels or one-hot rows."""
    return target if target.ndim == 1 else target.argmax(dim=1)


CRITERIONS = [
    CriterionCase("CrossEntropyCriterion/labels",
                  scores_and_target(nt.CrossEntropyCriterion, "labels"),
                  lambda c, x, t: F().cross_entropy(x, t)),
    CriterionCase("CrossEntropyCriterion/one-hot",
                  scores_and_target(nt.CrossEntropyCriterion, "one-hot"),
                  lambda c, x, t: F().cross_entropy(x, torch_labels(t))),
    *classification_rows("ClassNLLCriterion", nt.ClassNLLCriterion, probabilities,
                         lambda c, x, t: F().nll_loss(x.log(), torch_labels(t))),
    *classification_rows("ClassNLLCriterion/log_input", lambda: nt.ClassNLLCriterion(log_input=True),
                         log_probabilities, lambda c, x, t: F().nll_loss(x, torch_labels(t))),
    *classification_rows("ClassNLLCriterionUnstable", nt.ClassNLLCriterionUnstable, probabilities,
                         lambda c, x, t: F().nll_loss(x.log(), torch_labels(t)), unstable_at_zero=True),
    CriterionCase("MSECriterion", regression(nt.MSECriterion, scores, scores),
                  lambda c, x, t: per_sample(F().mse_loss(x, t.to(x.dtype), reduction="sum"), x)),
    CriterionCase("BCECriterion/soft",
                  regression(nt.BCECriterion, lambda rng, shape: rng.uniform(0.05, 0.95, shape),
                             lambda rng, shape: rng.uniform(0, 1, shape)),
                  lambda c, x, t: per_sample(F().binary_cross_entropy(x, t.to(x.dtype), reduction="sum"), x)),
    CriterionCase("BCECriterion/binary",
                  regression(nt.BCECriterion, lambda rng, shape: rng.uniform(0.05, 0.95, shape),
                             lambda rng, shape: rng.integers(0, 2, shape).astype(np.float64)),
                  lambda c, x, t: per_sample(F().binary_cross_entropy(x, t.to(x.dtype), reduction="sum"), x)),
]
