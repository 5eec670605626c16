"""The networks of the benchmark, built twice (numtorch and PyTorch) with the same weights.

Every builder returns ``step(i)`` callables: one training step (or one forward
pass in evaluation mode) on batch ``i`` of a fixed list of batches, returning
the loss (or the output), so that the two libraries can be checked against
each other.
"""

import numpy as np

import numtorch as nt
from numtorch.optim import sgd_momentum

IMAGE = (1, 28, 28)
PIXELS = int(np.prod(IMAGE))
CLASSES = 10
LEARNING_RATE = 0.01
MOMENTUM = 0.9


def synthetic_batches(seed, batch, count, flat):
    """``count`` MNIST-shaped float32 batches of pixels in [0, 1), with integer labels."""
    rng = np.random.default_rng(seed)
    shape = (batch, PIXELS) if flat else (batch, *IMAGE)
    return [(rng.random(shape, dtype=np.float32), rng.integers(0, CLASSES, size=batch))
            for _ in range(count)]


def mlp(hidden):
    """784 -> hidden... -> 10 log-probabilities: Linear layers, ReLU between, LogSoftMax (numtorch).

    The first layer does not compute the gradient with respect to the data, as
    PyTorch does not for an input that does not require grad.
    """
    dims = [PIXELS, *hidden, CLASSES]
    modules = []
    for n_in, n_out in zip(dims[:-1], dims[1:]):
        modules += [nt.Linear(n_in, n_out), nt.ReLU()]
    modules[-1] = nt.LogSoftMax()
    modules[0].needs_input_grad = False
    return nt.Sequential(*modules)


def cnn(channels):
    """Conv(1 -> c1, 3x3, pad 1)-ReLU-MaxPool(2)-Conv(c1 -> c2, 3x3, pad 1)-ReLU-MaxPool(2)-Flatten-
    Linear(c2 * 7 * 7 -> 10)-LogSoftMax (numtorch); the first layer skips the data gradient."""
    c1, c2 = channels
    model = nt.Sequential(
        nt.Conv2d(IMAGE[0], c1, 3, padding=1), nt.ReLU(), nt.MaxPool2d(2),
        nt.Conv2d(c1, c2, 3, padding=1), nt.ReLU(), nt.MaxPool2d(2),
        nt.Flatten(), nt.Linear(c2 * (IMAGE[1] // 4) * (IMAGE[2] // 4), CLASSES), nt.LogSoftMax(),
    )
    model[0].needs_input_grad = False
    return model


def copy_parameters(torch, layer, module):
    with torch.no_grad():
        layer.weight.copy_(torch.from_numpy(module.W))
        if module.b is not None:
            layer.bias.copy_(torch.from_numpy(module.b))
    return layer


def torch_twin(torch, model):
    """The PyTorch network of a numtorch Sequential, holding copies of its parameters."""
    layers = []
    for module in model:
        if isinstance(module, nt.Linear):
            layer = copy_parameters(torch, torch.nn.Linear(module.n_in, module.n_out,
                                                           bias=module.b is not None), module)
        elif isinstance(module, nt.Conv2d):
            layer = copy_parameters(torch, torch.nn.Conv2d(
                module.in_channels, module.out_channels, module.kernel_size, stride=module.stride,
                padding=module.padding, bias=module.b is not None), module)
        elif isinstance(module, nt.MaxPool2d):
            layer = torch.nn.MaxPool2d(module.kernel_size, module.stride, module.padding)
        elif isinstance(module, nt.Flatten):
            layer = torch.nn.Flatten()
        elif isinstance(module, nt.ReLU):
            layer = torch.nn.ReLU()
        elif isinstance(module, nt.LogSoftMax):
            layer = torch.nn.LogSoftmax(dim=1)
        else:
            raise TypeError(f"torch_twin: no PyTorch counterpart for {module!r}")
        layers.append(layer)
    return torch.nn.Sequential(*layers)


def numtorch_train_step(model, batches):
    """``step(i)``: zero the gradients, forward, NLL loss, backward, SGD with momentum; returns the loss."""
    criterion = nt.ClassNLLCriterion(log_input=True)
    params, grads = model.getParameters(), model.getGradParameters()
    config = {"learning_rate": LEARNING_RATE, "momentum": MOMENTUM}
    state = {}

    def step(i):
        x, y = batches[i % len(batches)]
        model.zeroGradParameters()
        output = model.forward(x)
        loss = criterion.forward(output, y)
        model.backward(x, criterion.backward(output, y))
        sgd_momentum(params, grads, config, state)
        return loss

    return step


def torch_train_step(torch, model, batches):
    """The same step in PyTorch: ``torch.optim.SGD`` with momentum, ``nll_loss``."""
    optimizer = torch.optim.SGD(model.parameters(), lr=LEARNING_RATE, momentum=MOMENTUM)
    data = [(torch.from_numpy(x), torch.from_numpy(y)) for x, y in batches]
    model.train()

    def step(i):
        x, y = data[i % len(data)]
        optimizer.zero_grad()
        loss = torch.nn.functional.nll_loss(model(x), y)
        loss.backward()
        optimizer.step()
        return loss.item()

    return step


def numtorch_inference(model, batches):
    """``step(i)``: the forward pass in evaluation mode; returns the output."""
    model.evaluate()

    def step(i):
        return model.forward(batches[i % len(batches)][0])

    return step


def torch_inference(torch, model, batches):
    """The forward pass in evaluation mode under ``torch.inference_mode``."""
    data = [torch.from_numpy(x) for x, _ in batches]
    model.eval()

    def step(i):
        with torch.inference_mode():
            return model(data[i % len(data)]).numpy()

    return step


def gemm_only_step(model, batches):
    """``step(i)``: only the matrix multiplies of one training step of the MLP ``model``.

    The floor of the layer-by-layer design: per Linear layer the forward
    product, the weight-gradient product accumulated in place (``beta=1``) and,
    except for the first layer, the input-gradient product, as BLAS GEMM calls
    on arrays of the step's shapes: the first layer reads batch ``i`` as the
    real step does, the others activations and gradients from one real step.
    """
    from scipy.linalg import blas

    layers = [module for module in model if isinstance(module, nt.Linear)]
    numtorch_train_step(model, batches)(0)
    inputs = [model.inputs[model.modules.index(layer)] for layer in layers]
    grads = [np.ones_like(layer.output) for layer in layers]
    work = [np.zeros_like(layer.gradW) for layer in layers]

    def step(i):
        inputs[0] = batches[i % len(batches)][0]
        for layer, x in zip(layers, inputs):
            blas.sgemm(1.0, layer.W.T, x.T, trans_a=1)
        for k in reversed(range(len(layers))):
            x, g, layer = inputs[k], grads[k], layers[k]
            blas.sgemm(1.0, x.T, g.T, beta=1.0, c=work[k].T, trans_b=1, overwrite_c=1)
            if k > 0:
                blas.sgemm(1.0, layer.W.T, g.T)
        return None

    return step


def products_only_inference(model, batches):
    """``step(i)``: only the matrix products of the MLP's forward pass on batch ``i``.

    The same BLAS calls ``Linear`` makes (GEMV for one row, GEMM otherwise),
    without the bias, the activations or the checks; later layers read the
    activations of one real forward pass.
    """
    from numtorch._blas import affine

    layers = [module for module in model if isinstance(module, nt.Linear)]
    model.evaluate()
    model.forward(batches[0][0])
    inputs = [model.inputs[model.modules.index(layer)] for layer in layers]

    def step(i):
        inputs[0] = batches[i % len(batches)][0]
        for layer, x in zip(layers, inputs):
            affine(x, layer.W, None)
        return None

    return step
