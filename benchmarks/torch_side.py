"""PyTorch's contestants, run inside a child process of their own (this file never imports numtorch).

The same forms as ``benchmarks.numtorch_side``, each written the way PyTorch's
own tutorials write it: ``nn.Sequential``, ``torch.optim.SGD(momentum=0.9)``,
``nll_loss`` on ``LogSoftmax`` output; the data as tensors sharing the NumPy
arrays' memory. ``readme`` and ``equal`` are the same PyTorch step (PyTorch
never computes the gradient with respect to data that does not require it);
``fit`` is the PyTorch loop over shuffled mini-batches that does what
numtorch's ``fit`` does per step (draw the batch by index, step, add up loss
and correct predictions), in the order ``fit`` draws them, so that the
losses can be compared; inference runs under ``torch.inference_mode()``.
"""

import time

import numpy as np
import torch

from benchmarks import networks
from benchmarks.timing import windows


def build(spec, weights=True):
    """The spec's network as ``torch.nn.Sequential`` holding ``networks.initial_weights`` (with
    ``weights=False``, PyTorch's own initial weights)."""
    layers = networks.network(spec)
    modules = []
    for layer in layers:
        kind = layer[0]
        if kind == "linear":
            modules.append(torch.nn.Linear(layer[1], layer[2]))
        elif kind == "conv":
            modules.append(torch.nn.Conv2d(layer[1], layer[2], layer[3], padding=layer[4]))
        elif kind == "relu":
            modules.append(torch.nn.ReLU())
        elif kind == "maxpool":
            modules.append(torch.nn.MaxPool2d(layer[1]))
        elif kind == "flatten":
            modules.append(torch.nn.Flatten())
        elif kind == "logsoftmax":
            modules.append(torch.nn.LogSoftmax(dim=1))
    if not weights:
        return torch.nn.Sequential(*modules)
    weighted = [module for module in modules if isinstance(module, (torch.nn.Linear, torch.nn.Conv2d))]
    with torch.no_grad():
        for module, (W, b) in zip(weighted, networks.initial_weights(layers, spec["seed"])):
            module.weight.copy_(torch.from_numpy(W))
            module.bias.copy_(torch.from_numpy(b))
    return torch.nn.Sequential(*modules)


def data(spec):
    X, y = networks.dataset(spec["seed"], spec["batch"] * spec["steps"], spec["network"] == "mlp")
    return torch.from_numpy(X), torch.from_numpy(y)


def run_step(spec):
    model = build(spec).train()
    batches = networks.batches(*data(spec), spec["batch"])
    optimizer = torch.optim.SGD(model.parameters(), lr=networks.LEARNING_RATE, momentum=networks.MOMENTUM)

    def step(i):
        x, y = batches[i % len(batches)]
        optimizer.zero_grad()
        loss = torch.nn.functional.nll_loss(model(x), y)
        loss.backward()
        optimizer.step()
        return loss.item()

    marks, values = windows(step, spec)
    return {"marks": marks, "values": values}


run_readme = run_equal = run_step


def run_fit(spec):
    model = build(spec)
    X, y = data(spec)
    optimizer = torch.optim.SGD(model.parameters(), lr=networks.LEARNING_RATE, momentum=networks.MOMENTUM)
    epochs = spec["warmup"] + spec["windows"]
    marks, losses = [time.perf_counter()], []
    for order in networks.epoch_orders(spec["seed"], len(y), epochs):
        model.train()
        total, correct = 0.0, 0
        for index in torch.from_numpy(order).split(spec["batch"]):
            xb, yb = X[index], y[index]
            optimizer.zero_grad()
            output = model(xb)
            loss = torch.nn.functional.nll_loss(output, yb)
            loss.backward()
            optimizer.step()
            total += loss.item() * len(yb)
            correct += int((output.argmax(dim=1) == yb).sum())
        losses.append(total / len(y))
        marks.append(time.perf_counter())
    return {"marks": marks, "values": losses}


def run_inference(spec):
    model = build(spec).eval()
    inputs = [x for x, _ in networks.batches(*data(spec), spec["batch"])]

    def step(i):
        with torch.inference_mode():
            return model(inputs[i % len(inputs)])

    marks, outputs = windows(step, spec)
    return {"marks": marks, "values": [output[:2].tolist() for output in outputs[:4]]}


def run_prepare(spec):
    torch.save(build(spec).eval().state_dict(), spec["model_path"])
    return {}


def run_cold(spec):
    model = build(spec, weights=False)
    model.load_state_dict(torch.load(spec["model_path"]))
    model.eval()
    with torch.inference_mode():
        output = model(torch.from_numpy(np.load(spec["input_path"])))
    return {"values": [output.tolist()]}


def run(spec):
    return globals()[f"run_{spec['form']}"](spec)
