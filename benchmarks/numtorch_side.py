"""numtorch's contestants, run inside a child process of their own (this file never imports torch).

Each ``run_<form>(spec)`` builds the network from ``benchmarks.networks``,
runs ``warmup + windows`` windows of ``steps`` steps and returns ``marks``,
the clock at every window boundary, and ``values``, what the first steps
returned (losses or outputs, for the agreement check against PyTorch).

Forms:
- ``readme``: the README's training loop as written there (a plain
  ``Sequential``, ``net.needs_input_grad = False``, the optimizer function
  called with ``getParameters()`` / ``getGradParameters()`` every step), with
  ``sgd_momentum`` in place of Adam so that every training row runs the same
  algorithm as PyTorch's ``SGD(momentum=0.9)``;
- ``fit``: ``numtorch.train.fit`` with ``SGD(momentum=0.9)``, no progress bar,
  ``threads`` from the spec ("auto" by default, as users get it);
- ``equal``: the bare step on lists fetched once (zero, forward, loss,
  backward, update), the data gradient skipped: the same work PyTorch does;
- ``inference``: ``forward`` in evaluation mode;
- ``cold``: load the saved MLP, predict one sample (a fresh process's start);
- ``prepare``: write the model file ``cold`` loads.
"""

import time

import numpy as np

import numtorch as nt
from benchmarks import networks
from benchmarks.timing import windows
from numtorch.optim import sgd_momentum


def build(spec):
    """The spec's network as a numtorch ``Sequential`` holding ``networks.initial_weights``."""
    layers = networks.network(spec)
    modules = []
    for layer in layers:
        kind = layer[0]
        if kind == "linear":
            modules.append(nt.Linear(layer[1], layer[2]))
        elif kind == "conv":
            modules.append(nt.Conv2d(layer[1], layer[2], layer[3], padding=layer[4]))
        elif kind == "relu":
            modules.append(nt.ReLU())
        elif kind == "maxpool":
            modules.append(nt.MaxPool2d(layer[1]))
        elif kind == "flatten":
            modules.append(nt.Flatten())
        elif kind == "logsoftmax":
            modules.append(nt.LogSoftMax())
    weighted = [module for module in modules if isinstance(module, (nt.Linear, nt.Conv2d))]
    for module, (W, b) in zip(weighted, networks.initial_weights(layers, spec["seed"])):
        module.W[...] = W
        module.b[...] = b
    return nt.Sequential(*modules)


def data(spec, flat=None):
    flat = spec["network"] == "mlp" if flat is None else flat
    return networks.dataset(spec["seed"], spec["batch"] * spec["steps"], flat)


def run_readme(spec):
    net = build(spec)
    batches = networks.batches(*data(spec), spec["batch"])
    criterion = nt.ClassNLLCriterion(log_input=True)
    config, state = {"learning_rate": networks.LEARNING_RATE, "momentum": networks.MOMENTUM}, {}
    net.needs_input_grad = False

    def step(i):
        x, y = batches[i % len(batches)]
        net.zeroGradParameters()
        predictions = net.forward(x)
        loss = criterion.forward(predictions, y)
        net.backward(x, criterion.backward(predictions, y))
        sgd_momentum(net.getParameters(), net.getGradParameters(), config, state)
        return loss

    marks, values = windows(step, spec)
    return {"marks": marks, "values": values}


def run_equal(spec):
    net = build(spec)
    net.needs_input_grad = False
    batches = networks.batches(*data(spec), spec["batch"])
    criterion = nt.ClassNLLCriterion(log_input=True)
    params, grads = net.getParameters(), net.getGradParameters()
    config, state = {"learning_rate": networks.LEARNING_RATE, "momentum": networks.MOMENTUM}, {}

    def step(i):
        x, y = batches[i % len(batches)]
        net.zeroGradParameters()
        output = net.forward(x)
        loss = criterion.forward(output, y)
        net.backward(x, criterion.backward(output, y))
        sgd_momentum(params, grads, config, state)
        return loss

    marks, values = windows(step, spec)
    return {"marks": marks, "values": values}


class MarkingSGD(nt.SGD):
    """``SGD`` that notes the clock after every step (how the benchmark sees fit's epochs)."""

    def __init__(self, model, **options):
        super().__init__(model, **options)
        self.marks = []

    def step(self):
        super().step()
        self.marks.append(time.perf_counter())


def run_fit(spec):
    from numtorch import train

    net = build(spec)
    X, y = data(spec)
    optimizer = MarkingSGD(net, lr=networks.LEARNING_RATE, momentum=networks.MOMENTUM)
    tuners, for_fit = [], train.ThreadTuner.for_fit
    train.ThreadTuner.for_fit = lambda threads: tuners.append(for_fit(threads)) or tuners[-1]
    start = time.perf_counter()
    history = train.fit(net, nt.ClassNLLCriterion(log_input=True), optimizer, (X, y),
                        epochs=spec["warmup"] + spec["windows"], batch_size=spec["batch"], seed=spec["seed"],
                        progress=False, threads=spec.get("threads", "auto"))
    marks = [start] + optimizer.marks[spec["steps"] - 1::spec["steps"]]
    tuner = tuners[0]
    threads = None if tuner is None else {
        "candidates": tuner.candidates,
        "chosen": [count for count, _ in tuner.choices],
        "probe_share": tuner.probing / tuner.trained if tuner.trained else 0.0,
    }
    return {"marks": marks, "values": history["train_loss"], "threads": threads}


def run_inference(spec):
    net = build(spec).evaluate()
    inputs = [x for x, _ in networks.batches(*data(spec), spec["batch"])]

    def step(i):
        return net.forward(inputs[i % len(inputs)])

    marks, outputs = windows(step, spec)
    return {"marks": marks, "values": [output[:2].tolist() for output in outputs[:4]]}


def run_prepare(spec):
    nt.save(build(spec).evaluate(), spec["model_path"], input_shape=(networks.PIXELS,))
    return {}


def run_cold(spec):
    net = nt.load(spec["model_path"])
    net.evaluate()
    output = net.forward(np.load(spec["input_path"]))
    return {"values": [output.tolist()]}


def run(spec):
    return globals()[f"run_{spec['form']}"](spec)
