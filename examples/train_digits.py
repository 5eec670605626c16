"""Train an MLP on scikit-learn's bundled digits with the course notebook's loop.

    zeroGradParameters -> forward -> criterion -> backward -> adam_optimizer

Prints the loss of every epoch and the final test accuracy (about 97%).
Needs scikit-learn (the ``train`` extra), for the data set and the split only.
Run: ``python examples/train_digits.py`` (``make demo`` is the ``numtorch train``
command instead: its own MLP preset and training loop).
"""

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

import numtorch as nt


def load(seed):
    """Digits 8x8 as (N, 64) float32 in [0, 1], labels (N,); a stratified 75/25 split."""
    digits = load_digits()
    x = (digits.data / 16).astype(np.float32)
    return train_test_split(x, digits.target, test_size=0.25, random_state=seed, stratify=digits.target)


def batches(x, y, batch_size, rng):
    order = rng.permutation(len(x))
    for start in range(0, len(x), batch_size):
        index = order[start:start + batch_size]
        yield x[index], y[index]


def train(epochs=15, batch_size=32, learning_rate=3e-3, seed=0, log=print):
    """Train, print progress through ``log``; return the test accuracy."""
    nt.manual_seed(seed)
    rng = np.random.default_rng(seed)
    x_train, x_test, y_train, y_test = load(seed)

    net = nt.Sequential(
        nt.Linear(64, 128), nt.ReLU(), nt.Dropout(0.1),
        nt.Linear(128, 10), nt.LogSoftMax(),
    )
    net.needs_input_grad = False  # backward skips the gradient w.r.t. the data: nobody reads it
    criterion = nt.ClassNLLCriterion(log_input=True)
    config = {"learning_rate": learning_rate, "beta1": 0.9, "beta2": 0.999, "epsilon": 1e-8}
    state = {}
    log(net)

    for epoch in range(1, epochs + 1):
        net.train()
        losses = []
        for x_batch, y_batch in batches(x_train, y_train, batch_size, rng):
            net.zeroGradParameters()
            predictions = net.forward(x_batch)
            losses.append(criterion.forward(predictions, y_batch))
            net.backward(x_batch, criterion.backward(predictions, y_batch))
            nt.adam_optimizer(net.getParameters(), net.getGradParameters(), config, state)
        log(f"epoch {epoch:2d}  loss {np.mean(losses):.4f}")

    net.evaluate()
    accuracy = float(np.mean(net.forward(x_test).argmax(axis=1) == y_test))
    log(f"test accuracy {accuracy:.2%} ({len(y_test)} digits)")
    return accuracy


if __name__ == "__main__":
    train()
