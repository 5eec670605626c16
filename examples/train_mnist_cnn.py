"""Train a small CNN on MNIST with the course notebook's loop.

    zeroGradParameters -> forward -> criterion -> backward -> adam_optimizer

Network: Conv(1->16, 3x3) - ReLU - MaxPool(2) - Conv(16->32, 3x3) - ReLU -
MaxPool(2) - Flatten - Linear(1568 -> 10), trained on the first 8,000 images of
the MNIST test set (t10k) and tested on its last 2,000. Prints the time and
loss of every epoch and the test accuracy (about 98%).

Run: ``python examples/train_mnist_cnn.py [DIRECTORY]``; DIRECTORY holds
``t10k-images-idx3-ubyte.gz`` and ``t10k-labels-idx1-ubyte.gz`` (default:
``../shared/data/mnist-t10k`` relative to the repository root). Where it is
absent the script says so and exits 0.
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np

import numtorch as nt
from numtorch.data import load_mnist
from numtorch.optim import adam_optimizer

DEFAULT_DIRECTORY = Path(__file__).resolve().parent.parent / ".." / "shared" / "data" / "mnist-t10k"
N_TRAIN, N_TEST = 8000, 2000


def batches(x, y, batch_size, rng):
    order = rng.permutation(len(x))
    for start in range(0, len(x), batch_size):
        index = order[start:start + batch_size]
        yield x[index], y[index]


def accuracy(net, x, y, batch_size=500):
    net.evaluate()
    correct = sum(int(np.sum(net.forward(x[i:i + batch_size]).argmax(axis=1) == y[i:i + batch_size]))
                  for i in range(0, len(x), batch_size))
    return correct / len(x)


def train(directory, epochs=8, batch_size=64, learning_rate=2e-3, seed=0, log=print):
    """Train, print progress through ``log``; return the test accuracy."""
    nt.manual_seed(seed)
    rng = np.random.default_rng(seed)
    x, y = load_mnist(directory, split="test")
    x_train, y_train = x[:N_TRAIN], y[:N_TRAIN]
    x_test, y_test = x[-N_TEST:], y[-N_TEST:]

    net = nt.Sequential(
        nt.Conv2d(1, 16, 3), nt.ReLU(), nt.MaxPool2d(2),
        nt.Conv2d(16, 32, 3), nt.ReLU(), nt.MaxPool2d(2),
        nt.Flatten(), nt.Linear(32 * 7 * 7, 10),
    )
    net.needs_input_grad = False  # backward skips the gradient w.r.t. the images: nobody reads it
    criterion = nt.CrossEntropyCriterion()
    config = {"learning_rate": learning_rate, "beta1": 0.9, "beta2": 0.999, "epsilon": 1e-8}
    state = {}
    log(net)

    for epoch in range(1, epochs + 1):
        net.train()
        losses = []
        start = time.perf_counter()
        for x_batch, y_batch in batches(x_train, y_train, batch_size, rng):
            net.zeroGradParameters()
            scores = net.forward(x_batch)
            losses.append(criterion.forward(scores, y_batch))
            net.backward(x_batch, criterion.backward(scores, y_batch))
            adam_optimizer(net.getParameters(), net.getGradParameters(), config, state)
        seconds = time.perf_counter() - start
        log(f"epoch {epoch}  loss {np.mean(losses):.4f}  {seconds:.1f} s  "
            f"test accuracy {accuracy(net, x_test, y_test):.2%}")

    test_accuracy = accuracy(net, x_test, y_test)
    log(f"test accuracy {test_accuracy:.2%} ({len(y_test)} images)")
    return test_accuracy


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory", nargs="?", default=str(DEFAULT_DIRECTORY),
                        help="folder with the MNIST t10k IDX files (default: %(default)s)")
    parser.add_argument("--epochs", type=int, default=8)
    args = parser.parse_args(argv)
    if not Path(args.directory).is_dir():
        print(f"skipped: MNIST folder {args.directory} not found")
        return 0
    train(args.directory, epochs=args.epochs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
