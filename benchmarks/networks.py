"""What both contestants build and train on, described with numbers alone.

NumPy only: the PyTorch child process never imports numtorch and numtorch's
never imports torch, yet both must start from the same weights and see the
same data. So each child regenerates them from the seed here: a network is a
list of layer tuples, its initial weights and the synthetic MNIST-shaped data
come from ``numpy.random.default_rng(seed)``.
"""

import numpy as np

IMAGE = (1, 28, 28)
PIXELS = int(np.prod(IMAGE))
CLASSES = 10
LEARNING_RATE = 0.01
MOMENTUM = 0.9


def mlp(hidden):
    """784 -> hidden... -> 10 log-probabilities: Linear layers with ReLU between, then LogSoftMax."""
    dims = [PIXELS, *hidden, CLASSES]
    layers = []
    for n_in, n_out in zip(dims[:-1], dims[1:]):
        layers += [("linear", n_in, n_out), ("relu",)]
    layers[-1] = ("logsoftmax",)
    return layers


def cnn(channels):
    """Conv(1 -> c1, 3x3, pad 1)-ReLU-MaxPool(2)-Conv(c1 -> c2, 3x3, pad 1)-ReLU-MaxPool(2)-Flatten-
    Linear(c2 * 7 * 7 -> 10)-LogSoftMax."""
    c1, c2 = channels
    return [("conv", IMAGE[0], c1, 3, 1), ("relu",), ("maxpool", 2),
            ("conv", c1, c2, 3, 1), ("relu",), ("maxpool", 2),
            ("flatten",), ("linear", c2 * (IMAGE[1] // 4) * (IMAGE[2] // 4), CLASSES), ("logsoftmax",)]


def network(spec):
    """The layer list of a child's ``spec``: ``{"network": "mlp", "hidden": [...]}`` or
    ``{"network": "cnn", "channels": [c1, c2]}``."""
    return mlp(spec["hidden"]) if spec["network"] == "mlp" else cnn(spec["channels"])


def initial_weights(layers, seed):
    """``(W, b)`` float32 per Linear and Conv layer, uniform in +-1/sqrt(fan_in) (PyTorch's default range).

    Linear W is (out, in) and Conv W is (out, in, k, k): the layouts both libraries use.
    """
    rng = np.random.default_rng(seed)
    weights = []
    for layer in layers:
        if layer[0] == "linear":
            shape = (layer[2], layer[1])
        elif layer[0] == "conv":
            shape = (layer[2], layer[1], layer[3], layer[3])
        else:
            continue
        bound = 1.0 / np.sqrt(np.prod(shape[1:]))
        weights.append((rng.uniform(-bound, bound, shape).astype(np.float32),
                        rng.uniform(-bound, bound, shape[0]).astype(np.float32)))
    return weights


def dataset(seed, samples, flat):
    """``samples`` MNIST-shaped float32 inputs in [0, 1) and integer labels, from ``seed + 1``."""
    rng = np.random.default_rng(seed + 1)
    shape = (samples, PIXELS) if flat else (samples, *IMAGE)
    return rng.random(shape, dtype=np.float32), rng.integers(0, CLASSES, size=samples)


def batches(X, y, batch):
    """Consecutive ``(X, y)`` slices of ``batch`` samples (the loops' fixed order)."""
    return [(X[start:start + batch], y[start:start + batch]) for start in range(0, len(y), batch)]


def epoch_orders(seed, samples, epochs):
    """The sample order of every epoch, as ``numtorch.train.fit(seed=seed)`` draws it (``Batches``)."""
    rng = np.random.Generator(np.random.PCG64(seed))
    return [rng.permutation(samples) for _ in range(epochs)]
