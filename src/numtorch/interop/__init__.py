"""PyTorch models in and out: ``from_torch(module)`` and ``to_torch(model)``.

Weights are copied in the layouts both libraries share (Linear (out, in),
Conv (out, in, kh, kw)), in the model's dtype; the training/evaluation mode
of every module is kept. What maps to what:

====================================================  ==========================================
PyTorch                                               numtorch
====================================================  ==========================================
Sequential                                            Sequential
Linear, Conv2d (groups 1, no dilation)                Linear, Conv2d
MaxPool2d, AvgPool2d (count_include_pad, floor)       MaxPool2d, AvgPool2d
AdaptiveAvgPool2d(1) followed by Flatten()            GlobalAvgPool2d
Flatten()                                             Flatten
BatchNorm1d/2d (affine)                               BatchNormalization, ChannelwiseScaling
BatchNorm1d/2d (affine=False)                         BatchNormalization
SyncBatchNorm                                         SyncBatchNormalization (likewise)
ReLU, LeakyReLU, ELU, Sigmoid, Tanh                   ReLU, LeakyReLU, ELU, Sigmoid, Tanh
Softplus (beta 1, threshold 20)                       SoftPlus
Softmax(dim=1), LogSoftmax(dim=1)                     SoftMax, LogSoftMax
Dropout, Identity                                     Dropout, Identity
torch_modules.ConcatTable, ParallelTable, Concat,     ConcatTable, ParallelTable, Concat,
CAddTable, CMulTable, JoinTable, SelectTable,         CAddTable, CMulTable, JoinTable, SelectTable,
ChannelwiseScaling                                    ChannelwiseScaling
====================================================  ==========================================

BatchNorm's ``momentum`` m is numtorch's ``alpha = 1 - m``; its
``num_batches_tracked`` is not copied. Classes are matched exactly (a
subclass of ``nn.Linear`` may compute something else): anything not in the
table is a ``ValueError`` naming its path in the tree (``features.3``) and
its class. torch is imported inside these functions only.
"""

import copy

import numpy as np

from numtorch._table import sample_shapes, zero_batch
from numtorch.containers import (
    Concat,
    ConcatTable,
    Container,
    ParallelTable,
    Sequential,
    path_name,
    walk,
)
from numtorch.layers import (
    ELU,
    AvgPool2d,
    BatchNormalization,
    CAddTable,
    ChannelwiseScaling,
    CMulTable,
    Conv2d,
    Dropout,
    Flatten,
    GlobalAvgPool2d,
    Identity,
    JoinTable,
    LeakyReLU,
    Linear,
    LogSoftMax,
    MaxPool2d,
    ReLU,
    SelectTable,
    Sigmoid,
    SoftMax,
    SoftPlus,
    Tanh,
)
from numtorch.module import Module
from numtorch.random import get_rng_state, set_rng_state

# from_torch: PyTorch -> numtorch


def unsupported(path, module, why):
    where = path or "the model"
    return ValueError(f"from_torch: {where} ({type(module).__name__}): {why}")


def array(tensor):
    return tensor.detach().cpu().numpy().copy()


def fill(module, **arrays):
    """Copy each array into the module's attribute of that name (same shape; dtype set by the caller)."""
    for name, value in arrays.items():
        getattr(module, name)[...] = value
    return module


def pair(value):
    return tuple(value) if isinstance(value, (tuple, list)) else (value, value)


def from_conv(path, m):
    if m.groups != 1 or pair(m.dilation) != (1, 1) or m.padding_mode != "zeros":
        raise unsupported(path, m, f"groups={m.groups}, dilation={m.dilation}, padding_mode="
                                   f"{m.padding_mode!r}: numtorch's Conv2d has groups 1, no dilation and "
                                   "zero padding")
    padding = m.padding
    if padding == "valid":
        padding = (0, 0)
    elif padding == "same":
        if any(k % 2 == 0 for k in m.kernel_size):
            raise unsupported(path, m, "padding='same' with an even kernel pads one side more, which "
                                       "numtorch's Conv2d does not")
        padding = tuple(k // 2 for k in m.kernel_size)
    module = Conv2d(m.in_channels, m.out_channels, tuple(m.kernel_size), tuple(m.stride), tuple(padding),
                    bias=m.bias is not None)
    return [module], {"W": m.weight, "b": m.bias}


def from_pool(cls):
    def convert(path, m):
        if m.ceil_mode:
            raise unsupported(path, m, "ceil_mode=True: numtorch rounds output sizes down")
        if cls is MaxPool2d and (pair(m.dilation) != (1, 1) or m.return_indices):
            raise unsupported(path, m, "dilation and return_indices are not supported")
        if cls is AvgPool2d and (not m.count_include_pad or m.divisor_override is not None):
            raise unsupported(path, m, "numtorch's AvgPool2d divides by the whole window, padding "
                                       "included (count_include_pad=True, no divisor_override)")
        stride = m.stride if m.stride else m.kernel_size
        return [cls(pair(m.kernel_size), pair(stride), pair(m.padding))], {}

    return convert


def from_batch_norm(cls):
    """A converter of BatchNorm1d/2d (or SyncBatchNorm) to ``cls``, BatchNormalization (or
    SyncBatchNormalization), plus a ChannelwiseScaling for an affine one."""

    def convert(path, m):
        if not m.track_running_stats or m.momentum is None:
            raise unsupported(path, m, "numtorch's BatchNormalization keeps running statistics with a "
                                       "momentum (track_running_stats=True, momentum a number)")
        if m.eps != BatchNormalization.EPS:
            raise unsupported(path, m, f"eps={m.eps}: numtorch's BatchNormalization uses "
                                       f"EPS={BatchNormalization.EPS}")
        norm = cls(alpha=1 - m.momentum, n_features=m.num_features)
        arrays = {"moving_mean": m.running_mean, "moving_variance": m.running_var}
        if not m.affine:
            return [norm], arrays
        return [norm, ChannelwiseScaling(m.num_features)], {**arrays, "gamma": m.weight, "beta": m.bias}

    return convert


def from_softmax(cls):
    def convert(path, m):
        if m.dim not in (1, -1):
            raise unsupported(path, m, f"dim={m.dim}: numtorch's {cls.__name__} normalizes (N, C) over dim 1")
        return [cls()], {}

    return convert


def from_softplus(path, m):
    if m.beta != 1 or m.threshold != SoftPlus.THRESHOLD:
        raise unsupported(path, m, f"beta={m.beta}, threshold={m.threshold}: numtorch's SoftPlus has beta 1 "
                                   f"and threshold {SoftPlus.THRESHOLD:g}")
    return [SoftPlus()], {}


def from_flatten(path, m):
    if (m.start_dim, m.end_dim) != (1, -1):
        raise unsupported(path, m, f"start_dim={m.start_dim}, end_dim={m.end_dim}: numtorch flattens "
                                   "(N, ...) to (N, -1) only")
    return [Flatten()], {}


def leaf(make, **arrays):
    """A converter for a layer built by ``make(m)`` whose arrays are ``{numtorch name: torch name}``."""
    return lambda path, m: ([make(m)], {ours: getattr(m, theirs) for ours, theirs in arrays.items()})


def torch_converters():
    """``{torch class: converter(path, module) -> ([numtorch modules], {attribute: tensor})}``."""
    from torch import nn

    from numtorch.distributed import SyncBatchNormalization
    from numtorch.interop import torch_modules as tm

    return {
        nn.Linear: leaf(lambda m: Linear(m.in_features, m.out_features, bias=m.bias is not None),
                        W="weight", b="bias"),
        nn.Conv2d: from_conv,
        nn.MaxPool2d: from_pool(MaxPool2d),
        nn.AvgPool2d: from_pool(AvgPool2d),
        nn.Flatten: from_flatten,
        nn.BatchNorm1d: from_batch_norm(BatchNormalization),
        nn.BatchNorm2d: from_batch_norm(BatchNormalization),
        nn.SyncBatchNorm: from_batch_norm(SyncBatchNormalization),
        nn.ReLU: leaf(lambda m: ReLU()),
        nn.LeakyReLU: leaf(lambda m: LeakyReLU(m.negative_slope)),
        nn.ELU: leaf(lambda m: ELU(m.alpha)),
        nn.Softplus: from_softplus,
        nn.Sigmoid: leaf(lambda m: Sigmoid()),
        nn.Tanh: leaf(lambda m: Tanh()),
        nn.Softmax: from_softmax(SoftMax),
        nn.LogSoftmax: from_softmax(LogSoftMax),
        nn.Dropout: leaf(lambda m: Dropout(m.p)),
        nn.Identity: leaf(lambda m: Identity()),
        tm.CAddTable: leaf(lambda m: CAddTable()),
        tm.CMulTable: leaf(lambda m: CMulTable()),
        tm.JoinTable: leaf(lambda m: JoinTable(m.dim)),
        tm.SelectTable: leaf(lambda m: SelectTable(m.index)),
        tm.ChannelwiseScaling: leaf(lambda m: ChannelwiseScaling(m.num_features), gamma="weight",
                                    beta="bias"),
    }


class FromTorch:
    """One conversion: the converters, and the dtype every copied tensor must share."""

    def __init__(self):
        import torch
        from torch import nn

        from numtorch.interop import torch_modules as tm

        self.nn, self.tm = nn, tm
        self.converters = torch_converters()
        self.containers = {nn.Sequential: Sequential, tm.ConcatTable: ConcatTable,
                           tm.ParallelTable: ParallelTable, tm.Concat: Concat}
        self.dtypes = {torch.float32: np.dtype(np.float32), torch.float64: np.dtype(np.float64)}
        self.dtype = None

    def copy_in(self, path, m, module, arrays):
        for name, tensor in arrays.items():
            if tensor is None:
                continue
            dtype = self.dtypes.get(tensor.dtype)
            if dtype is None:
                raise unsupported(path, m, f"{name} is {tensor.dtype}: numtorch computes in float32 or "
                                           "float64")
            if self.dtype is None:
                self.dtype = dtype
            if dtype != self.dtype:
                raise unsupported(path, m, f"{name} is {dtype}, earlier weights {self.dtype}: numtorch "
                                           "models hold one dtype")
        module.astype(self.dtype or np.float32)
        fill(module, **{name: array(tensor) for name, tensor in arrays.items() if tensor is not None})

    def convert(self, m, path):
        """``m`` as a list of numtorch modules (a BatchNorm with its affine part is two)."""
        kind = type(m)
        if kind in self.containers:
            return [self.container(m, path)]
        converter = self.converters.get(kind)
        if converter is None:
            raise unsupported(path, m, "no numtorch counterpart (from_torch reads Sequential trees of "
                                       "the layers numtorch has; see numtorch.interop)")
        modules, arrays = converter(path, m)
        if any(True for _ in m.children()):
            raise unsupported(path, m, "holds sub-modules, which numtorch's layer does not")
        for module in modules:
            split = {name: tensor for name, tensor in arrays.items()
                     if name in (*module._parameters, *module._buffers)}
            self.copy_in(path, m, module, split)
            module.training = m.training
        return modules

    def children(self, m, path):
        """The converted children of a container, AdaptiveAvgPool2d(1) + Flatten() read as one."""
        named = list(m.named_children())
        modules, i = [], 0
        while i < len(named):
            name, child = named[i]
            child_path = f"{path}.{name}" if path else name
            if type(child) is self.nn.AdaptiveAvgPool2d:
                following = named[i + 1][1] if i + 1 < len(named) else None
                flatten = (type(following) is self.nn.Flatten
                           and (following.start_dim, following.end_dim) == (1, -1))
                if pair(child.output_size) != (1, 1) or not flatten or type(m) is not self.nn.Sequential:
                    raise unsupported(child_path, child, "numtorch reads AdaptiveAvgPool2d only as "
                                                         "AdaptiveAvgPool2d(1) followed by Flatten() in a "
                                                         "Sequential (GlobalAvgPool2d)")
                pool = GlobalAvgPool2d()
                pool.training = child.training
                modules.append([pool])
                i += 2
                continue
            modules.append(self.convert(child, child_path))
            i += 1
        return modules

    def container(self, m, path):
        parts = self.children(m, path)
        if type(m) is self.nn.Sequential:
            module = Sequential(*(part for modules in parts for part in modules))
        else:
            branches = [modules[0] if len(modules) == 1 else Sequential(*modules) for modules in parts]
            cls = self.containers[type(m)]
            module = cls(m.dim, *branches) if cls is Concat else cls(*branches)
        module.training = m.training
        return module


def from_torch(module):
    """The numtorch model equivalent to the ``torch.nn.Module`` tree ``module``, weights copied.

    Every module keeps its training/evaluation mode; a BatchNorm keeps its
    running statistics. The result is a numtorch ``Sequential`` unless
    ``module`` is a single layer or table container.
    """
    import torch

    if not isinstance(module, torch.nn.Module):
        raise TypeError(f"from_torch: expected a torch.nn.Module, got {type(module).__name__}")
    state = get_rng_state()
    try:
        converter = FromTorch()
        modules = converter.convert(module, "")
    finally:
        set_rng_state(state)
    if len(modules) == 1:
        return modules[0]
    model = Sequential(*modules)
    model.training = module.training
    return model


# to_torch: numtorch -> PyTorch


class ToTorch:
    def __init__(self, ranks):
        import torch
        from torch import nn

        from numtorch.distributed import SyncBatchNormalization
        from numtorch.interop import torch_modules as tm

        self.torch, self.nn, self.tm, self.ranks = torch, nn, tm, ranks
        self.norms = (BatchNormalization, SyncBatchNormalization)

    def fail(self, path, module, why):
        return ValueError(f"to_torch: {path_name(path) or 'the model'} ({type(module).__name__}): {why}")

    def tensor(self, array):
        return self.torch.tensor(array)

    def parameter(self, array):
        return self.nn.Parameter(self.torch.tensor(array))

    def convert(self, module, path):
        """``module`` as a list of torch modules (GlobalAvgPool2d is two)."""
        if isinstance(module, Container):
            return [self.container(module, path)]
        return [self.leaf(module, path)]

    def batch_norm(self, module, path, scaling=None):
        """BatchNorm1d/2d after its input's rank; SyncBatchNorm (any rank) for a SyncBatchNormalization."""
        rank = self.ranks.get(id(module))
        synchronised = type(module) is not BatchNormalization
        if module.n_features is None or (rank is None and not synchronised):
            raise self.fail(path, module, "has not seen an input yet, so its channels and rank (BatchNorm1d "
                                          "or BatchNorm2d) are unknown: pass input_shape to to_torch")
        cls = self.nn.BatchNorm2d if rank == 4 else self.nn.BatchNorm1d
        if synchronised:
            cls = self.nn.SyncBatchNorm
        norm = cls(module.n_features, eps=module.EPS, momentum=1 - module.alpha, affine=scaling is not None)
        norm.running_mean = self.tensor(module.moving_mean)
        norm.running_var = self.tensor(module.moving_variance)
        if scaling is not None:
            norm.weight, norm.bias = self.parameter(scaling.gamma), self.parameter(scaling.beta)
        norm.train(module.training)
        return norm

    def leaf(self, m, path):
        nn, tm = self.nn, self.tm
        kind = type(m)
        if kind is Linear:
            t = nn.Linear(m.n_in, m.n_out, bias=m.b is not None)
            t.weight = self.parameter(m.W)
            if m.b is not None:
                t.bias = self.parameter(m.b)
        elif kind is Conv2d:
            t = nn.Conv2d(m.in_channels, m.out_channels, m.kernel_size, m.stride, m.padding,
                          bias=m.b is not None)
            t.weight = self.parameter(m.W)
            if m.b is not None:
                t.bias = self.parameter(m.b)
        elif kind in self.norms:
            return self.batch_norm(m, path)
        elif kind is ChannelwiseScaling:
            t = tm.ChannelwiseScaling(m.n)
            t.weight, t.bias = self.parameter(m.gamma), self.parameter(m.beta)
        else:
            make = {
                MaxPool2d: lambda: nn.MaxPool2d(m.kernel_size, m.stride, m.padding),
                AvgPool2d: lambda: nn.AvgPool2d(m.kernel_size, m.stride, m.padding),
                Flatten: lambda: nn.Flatten(),
                ReLU: lambda: nn.ReLU(),
                LeakyReLU: lambda: nn.LeakyReLU(m.slope),
                ELU: lambda: nn.ELU(m.alpha),
                SoftPlus: lambda: nn.Softplus(),
                Sigmoid: lambda: nn.Sigmoid(),
                Tanh: lambda: nn.Tanh(),
                SoftMax: lambda: nn.Softmax(dim=1),
                LogSoftMax: lambda: nn.LogSoftmax(dim=1),
                Dropout: lambda: nn.Dropout(m.p),
                Identity: lambda: nn.Identity(),
                CAddTable: lambda: tm.CAddTable(),
                CMulTable: lambda: tm.CMulTable(),
                JoinTable: lambda: tm.JoinTable(m.dim),
                SelectTable: lambda: tm.SelectTable(m.index),
            }.get(kind)
            if kind is GlobalAvgPool2d:
                t = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
            elif make is None:
                raise self.fail(path, m, "no PyTorch counterpart (to_torch writes numtorch's own layers "
                                         "and containers)")
            else:
                t = make()
        t.train(m.training)
        return t

    def sequence(self, modules, path):
        """A Sequential's children as torch modules: BatchNormalization + ChannelwiseScaling of the same
        channels become one affine BatchNorm; GlobalAvgPool2d is spliced in as AdaptiveAvgPool2d + Flatten."""
        converted, i = [], 0
        while i < len(modules):
            m, child_path = modules[i], (*path, i)
            following = modules[i + 1] if i + 1 < len(modules) else None
            if (type(m) in self.norms and type(following) is ChannelwiseScaling
                    and following.n == m.n_features and following.training == m.training):
                converted.append(self.batch_norm(m, child_path, following))
                i += 2
                continue
            part = self.convert(m, child_path)[0]
            converted += list(part) if type(m) is GlobalAvgPool2d else [part]
            i += 1
        return converted

    def container(self, m, path):
        nn, tm = self.nn, self.tm
        kind = type(m)
        if kind is Sequential:
            t = nn.Sequential(*self.sequence(m.modules, path))
        else:
            branches = [self.convert(child, (*path, i))[0] for i, child in enumerate(m.modules)]
            if kind is ConcatTable:
                t = tm.ConcatTable(*branches)
            elif kind is ParallelTable:
                t = tm.ParallelTable(*branches)
            elif kind is Concat:
                t = tm.Concat(m.dim, *branches)
            else:
                raise self.fail(path, m, "a container with no PyTorch counterpart (to_torch writes "
                                         "Sequential, ConcatTable, ParallelTable and Concat)")
        t.training = m.training
        return t


def batch_norm_ranks(model, input_shape):
    """``{id(BatchNormalization): rank of its input}``, read from the last forward or from a run of a copy
    on a zero sample of ``input_shape`` (which also creates statistics a BatchNormalization makes lazily).

    Returns the model to convert (the copy, with the original's modes, when ``input_shape`` is given).
    """
    if input_shape is not None:
        modes = [module.training for _, module in walk(model)]
        sample = zero_batch(sample_shapes(input_shape, "to_torch"))
        probe = copy.deepcopy(model).evaluate()
        try:
            probe.forward(sample)
        except (ValueError, TypeError) as error:
            raise ValueError(f"to_torch: input_shape {input_shape} does not fit the model: {error}") from None
        for (_, module), mode in zip(walk(probe), modes):
            module.training = mode
        model = probe
    ranks = {id(module): module.output.ndim for _, module in walk(model)
             if isinstance(module, BatchNormalization) and module.output is not None}
    return model, ranks


def to_torch(model, input_shape=None):
    """The ``torch.nn.Module`` equivalent to numtorch ``model``, weights copied (in their dtype).

    Every module keeps its training/evaluation mode. A ``BatchNormalization``
    becomes ``BatchNorm1d`` or ``BatchNorm2d`` after the rank of its input,
    known from the model's last forward or, with ``input_shape`` (one
    sample's shape, e.g. ``(1, 28, 28)``; a list of shapes for a table), from
    a run of a copy on zeros. Table modules and a lone ``ChannelwiseScaling``
    become the classes of ``numtorch.interop.torch_modules``.
    """
    if not isinstance(model, Module):
        raise TypeError(f"to_torch: expected a numtorch Module, got {type(model).__name__}")
    model, ranks = batch_norm_ranks(model, input_shape)
    return ToTorch(ranks).convert(model, ())[0]
