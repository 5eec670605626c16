"""PyTorch counterparts of numtorch modules that ``torch.nn`` lacks: the table modules and
``ChannelwiseScaling``.

``to_torch`` builds these where a numtorch network branches, and
``from_torch`` reads them back, so a branching network goes both ways. They
are plain ``torch.nn.Module``s that compute what their numtorch namesakes
compute (a table is a Python list of tensors, as in numtorch), so they train,
save and script like any PyTorch module; build them by hand as you would the
numtorch ones::

    block = nn.Sequential(ConcatTable(body, nn.Identity()), CAddTable(), nn.ReLU())

This module imports torch; ``numtorch.interop`` imports it only inside
``from_torch`` and ``to_torch``.
"""

import torch
from torch import nn


class Branches(nn.Module):
    """Children named ``0``, ``1``, ... as in ``nn.Sequential``; iterable and indexable."""

    def __init__(self, *modules):
        super().__init__()
        for i, module in enumerate(modules):
            self.add_module(str(i), module)

    def __iter__(self):
        return iter(self._modules.values())

    def __len__(self):
        return len(self._modules)

    def __getitem__(self, index):
        return list(self._modules.values())[index]


class ConcatTable(Branches):
    """Every branch reads the same input; the output is the list of their outputs."""

    def forward(self, x):
        return [module(x) for module in self]


class ParallelTable(Branches):
    """Branch i reads entry i of the input list."""

    def forward(self, x):
        return [module(entry) for module, entry in zip(self, x)]


class Concat(Branches):
    """Every branch reads the same input; their outputs are joined along ``dim`` (0 is the batch)."""

    def __init__(self, dim, *modules):
        super().__init__(*modules)
        self.dim = dim

    def forward(self, x):
        return torch.cat([module(x) for module in self], dim=self.dim)

    def extra_repr(self):
        return f"dim={self.dim}"


class CAddTable(nn.Module):
    """The element-wise sum of the input list's tensors."""

    def forward(self, x):
        total = x[0]
        for entry in x[1:]:
            total = total + entry
        return total


class CMulTable(nn.Module):
    """The element-wise product of the input list's tensors."""

    def forward(self, x):
        product = x[0]
        for entry in x[1:]:
            product = product * entry
        return product


class JoinTable(nn.Module):
    """The input list's tensors joined along ``dim`` (0 is the batch)."""

    def __init__(self, dim):
        super().__init__()
        self.dim = dim

    def forward(self, x):
        return torch.cat(list(x), dim=self.dim)

    def extra_repr(self):
        return f"dim={self.dim}"


class SelectTable(nn.Module):
    """Entry ``index`` of the input list (negative counts from the end)."""

    def __init__(self, index):
        super().__init__()
        self.index = index

    def forward(self, x):
        return x[self.index]

    def extra_repr(self):
        return f"index={self.index}"


class ChannelwiseScaling(nn.Module):
    """``y = weight * x + bias`` per channel (axis 1) of (N, C) or (N, C, H, W) input."""

    def __init__(self, num_features):
        super().__init__()
        self.num_features = num_features
        self.weight = nn.Parameter(torch.ones(num_features))
        self.bias = nn.Parameter(torch.zeros(num_features))

    def forward(self, x):
        shape = (1, -1) + (1,) * (x.dim() - 2)
        return x * self.weight.view(shape) + self.bias.view(shape)

    def extra_repr(self):
        return str(self.num_features)
