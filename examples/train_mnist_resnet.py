"""Train a small residual network, built from tables, on MNIST with ``fit``.

Each residual block is Torch7's ``Sequential(ConcatTable(body, Identity()),
CAddTable(), ReLU())`` (see ``numtorch.models.residual_block``); the network
is ``numtorch.models.resnet``, the ``numtorch train --model resnet`` preset:
a stem conv with BatchNorm and max pooling, two residual stages (16 and 32
channels), GlobalAvgPool2d and Linear. Trained with Adam and a cosine schedule
on the first 8,000 images of the MNIST test set (t10k), tested on its last
2,000 (about 99%). Prints the network, the loss and accuracy of every epoch,
the time per epoch and the test accuracy.

Run: ``python examples/train_mnist_resnet.py [DIRECTORY]``; DIRECTORY holds
``t10k-images-idx3-ubyte.gz`` and ``t10k-labels-idx1-ubyte.gz`` (default:
``../shared/data/mnist-t10k`` relative to the repository root). Where it is
absent the script says so and exits 0.
"""

import argparse
import sys
import time
from pathlib import Path

import numtorch as nt
from numtorch import models
from numtorch.data import load_mnist
from numtorch.optim import Adam, CosineAnnealingLR
from numtorch.train import evaluate, fit

DEFAULT_DIRECTORY = Path(__file__).resolve().parent.parent / ".." / "shared" / "data" / "mnist-t10k"
N_TRAIN, N_TEST = 8000, 2000


def train(directory, epochs=8, batch_size=64, learning_rate=3e-3, seed=0, log=print, progress=False):
    """Train, print progress through ``log``; return the test accuracy."""
    nt.manual_seed(seed)
    x, y = load_mnist(directory, split="test")
    x_train, y_train = x[:N_TRAIN], y[:N_TRAIN]
    x_test, y_test = x[-N_TEST:], y[-N_TEST:]

    net, _ = models.resnet(x.shape[1:], classes=10)
    log(net)
    optimizer = Adam(net, lr=learning_rate)
    start = time.perf_counter()
    history = fit(net, nt.CrossEntropyCriterion(), optimizer, (x_train, y_train), epochs=epochs,
                  batch_size=batch_size, seed=seed, scheduler=CosineAnnealingLR(optimizer, T_max=epochs),
                  progress=progress)
    seconds = time.perf_counter() - start
    for epoch, loss, accuracy in zip(history["epoch"], history["train_loss"], history["train_accuracy"]):
        log(f"epoch {epoch}  loss {loss:.4f}  train accuracy {accuracy:.2%}")
    test_accuracy = evaluate(net, x_test, y_test).accuracy
    log(f"{seconds / epochs:.1f} s per epoch ({len(y_train)} images)")
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
    train(args.directory, epochs=args.epochs, progress=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
