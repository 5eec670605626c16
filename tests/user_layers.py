"""Layers a user of numtorch defines: what the io tests save, load and refuse."""

import numpy as np

from numtorch.module import Module
from numtorch.random import generator


class Noise(Module):
    """A user-defined layer: adds N(0, scale^2) noise in training (draws from numtorch's RNG)."""

    _parameters = ("shift",)
    _gradients = ("grad_shift",)

    def __init__(self, n, scale=0.5, sizes=(1, 2)):
        super().__init__()
        self.scale, self.sizes = scale, sizes
        self.shift = np.zeros(n, np.float32)
        self.grad_shift = np.zeros_like(self.shift)

    def config(self):
        return {"n": len(self.shift), "scale": self.scale, "sizes": self.sizes}

    def updateOutput(self, input):
        noise = generator().standard_normal(input.shape).astype(input.dtype) if self.training else 0
        self.output = input + noise * input.dtype.type(self.scale) + self.shift
        return self.output

    def updateGradInput(self, input, gradOutput):
        self.gradInput = gradOutput.copy()
        return self.gradInput

    def accGradParameters(self, input, gradOutput):
        self.grad_shift += gradOutput.sum(axis=0)


class Holder(Module):
    """A user module built around another module (its arrays are saved through the argument)."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def config(self):
        return {"inner": self.inner}


class Options(Module):
    """A user module taking a tuple of ``sizes`` and ``**options``."""

    def __init__(self, sizes=(), **options):
        super().__init__()
        self.sizes, self.options = sizes, options

    def config(self):
        return {"sizes": self.sizes, **self.options}


class Scaled(Module):
    """A user container (not a Sequential): the sum of its children's outputs times ``scale``."""

    def __init__(self, scale=1.0):
        super().__init__()
        self.scale = scale
        self.modules = []

    def config(self):
        return {"scale": self.scale}

    def add(self, module):
        self.modules.append(module)
        return self

    def updateOutput(self, input):
        self.output = self.scale * sum(module.forward(input) for module in self.modules)
        return self.output

    def getParameters(self):
        return [module.getParameters() for module in self.modules]


class NoConfig(Module):
    """A layer whose constructor takes an argument but which forgot ``config()``."""

    def __init__(self, width):
        super().__init__()
        self.width = width


class WrongConfig(Module):
    """A layer whose ``config()`` names an argument its constructor does not take."""

    def __init__(self, width):
        super().__init__()
        self.width = width

    def config(self):
        return {"size": self.width}


class WritesMarker(Module):
    """A user layer whose constructor has a side effect: it creates the file ``marker``."""

    def __init__(self, marker):
        super().__init__()
        self.marker = marker
        open(marker, "w").close()

    def config(self):
        return {"marker": self.marker}

    def updateOutput(self, input):
        self.output = input.copy()
        return self.output

    def updateGradInput(self, input, gradOutput):
        self.gradInput = gradOutput.copy()
        return self.gradInput
