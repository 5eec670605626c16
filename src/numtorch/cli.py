"""The ``numtorch`` command: ``train``, ``evaluate``, ``summary``, ``export``, ``import``, ``inspect``.

``numtorch train`` loads a dataset, builds a preset network, fits it with
progress bars, measures the test set and writes into ``--out``:
``model.npz``, ``checkpoint.npz`` (after every epoch, and where Ctrl-C
stopped it), ``history.json``, ``curves.png`` and ``confusion.png``. The
folder is checked and locked (``numtorch.run_folder``) before any data is
loaded. The checkpoint and the model record the run's settings: ``--resume``
runs the checkpoint's (naming the options given that it ignores), and
``evaluate`` without ``--data`` measures the data the model was trained on.
With ``--inspect [EVERY]`` it also writes ``inspect.json`` and ``inspect.png``
(``numtorch.inspector``; written even when training stops on a NaN), which
``numtorch inspect RUN_DIR`` reads back; ``--tensorboard DIR`` writes
TensorBoard event files.

``numtorch export MODEL.npz MODEL.onnx`` writes a saved model as ONNX
(``numtorch.onnx``: opset 17, evaluation mode) and ``numtorch import
MODEL.onnx MODEL.npz`` reads an ONNX model (one numtorch's layers compute,
PyTorch's exports included) into a numtorch model file; both need the onnx
extra (``pip install 'numtorch[onnx]'``).

Data (``--data``):
- ``digits``: scikit-learn's 8x8 digits, a fixed 80/20 split;
- ``mnist:DIR``: MNIST or Fashion-MNIST IDX files; the train and t10k files
  when both are there, else the one split present is cut in order, its first
  80% to train and last 20% to test (on the 10,000 t10k images: 8,000 / 2,000);
- ``PATH.npz``: arrays ``X`` and ``y``, split 80/20 with a fixed seed.
A tenth of the training part (fixed seed) is held out as the validation set.

Errors print one line on stderr, ``numtorch COMMAND: error: ...``, and exit
with status 2 for bad arguments, 1 for anything else the command cannot do
(unreadable data, a checkpoint of another network, not enough memory); no
traceback unless ``NUMTORCH_TRACEBACK=1`` is set. A closed standard output
(``numtorch summary m.npz | head -2``) silences the rest of the output, not
the work, and is no error (exit status 0).

``mpiexec -n N numtorch train ...`` trains data-parallel on N processes
(``numtorch.distributed``), ``--batch-size`` being the global batch; rank 0
alone prints and claims and writes ``--out``. An error on any rank prints
that rank's message and ends the whole job (``MPI_Abort``) with status 1.
"""

import argparse
import importlib
import importlib.util
import math
import os
import shlex
import sys
import time
from types import SimpleNamespace

import numpy as np
import scipy

import numtorch
from numtorch import distributed, models, run_folder
from numtorch._memory import check_memory
from numtorch.containers import walk
from numtorch.criterions import CrossEntropyCriterion
from numtorch.data import load_digits, load_mnist, load_npz, mnist_splits, train_test_split
from numtorch.inspector import DEFAULT_EVERY, Inspector, replay
from numtorch.inspector import load as load_inspection
from numtorch.inspector.plot import plot as plot_inspection
from numtorch.io import architecture, load_with_metadata, read_header, save
from numtorch.io.archive import atomic_write, strict_json
from numtorch.module import Module, flatten
from numtorch.optim import SGD, Adam
from numtorch.random import manual_seed
from numtorch.summary import summary
from numtorch.threads import set_num_threads
from numtorch.train import Diverged, Interrupted, Position, evaluate, fit

DEFAULT_LR = {"adam": 1e-3, "sgd": 0.1}
# A run's settings and their defaults (None: the preset's hidden sizes, the optimizer's learning rate).
SETTINGS = {"data": "digits", "model": "mlp", "hidden": None, "optimizer": "adam", "lr": None,
            "batch_size": 64, "epochs": 20, "seed": 0}
OUTPUTS = ("model.npz", "checkpoint.npz", "history.json", "curves.png", "confusion.png")
INSPECT_OUTPUTS = ("inspect.json", "inspect.png")
VAL_FRACTION = 0.1
ANNOTATED_CLASSES = 20  # the confusion plot writes each count (and ticks each class) up to this many classes
TEST_FRACTION = 0.2


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors, ``numtorch train: error: ...``, and exit status 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def say(*parts):
    """Print a line on stdout (rank 0's alone under mpiexec). A closed stdout (``| head``) silences the
    rest of the output, not the work."""
    if not distributed.is_root():
        return
    try:
        print(*parts, flush=True)
    except BrokenPipeError:
        # Point stdout at /dev/null so that what is still buffered, and later lines, go nowhere
        # instead of raising again (at exit too).
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


def version():
    return (f"numtorch {numtorch.__version__} (NumPy {np.__version__}, SciPy {scipy.__version__}, "
            f"Python {sys.version.split()[0]})")


def integer(minimum):
    """An argparse type: an int >= ``minimum``."""

    def parse(text):
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < minimum:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {text!r}")
        return value

    return parse


def positive_float(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not np.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def thread_count(text):
    """``auto`` or an int >= 1: the ``--threads`` option."""
    if text == "auto":
        return text
    try:
        return integer(1)(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"expected auto or an integer >= 1, got {text!r}") from None


def sample_shape(text):
    """An argparse type: the shape of one sample, ``1,28,28``."""
    try:
        sizes = tuple(int(part) for part in text.split(","))
    except ValueError:
        sizes = ()
    if not sizes or any(size < 1 for size in sizes):
        raise argparse.ArgumentTypeError(f"expected positive sizes like 1,28,28, got {text!r}")
    return sizes


def hidden_sizes(text):
    try:
        sizes = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected sizes like 256,128, got {text!r}") from None
    if any(size < 1 for size in sizes):
        raise argparse.ArgumentTypeError(f"expected positive sizes like 256,128, got {text!r}")
    return sizes


CUSTOM_OPTION = dict(action="append", default=[], metavar="FILE.py|package.module",
                     help="import your own layers that the model uses (the code runs: name only code you "
                          "trust); repeat for several")


def build_parser():
    parser = Parser(prog="numtorch", description="Train, evaluate and inspect numtorch models.")
    parser.add_argument("--version", action="version", version=version())
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                     parser_class=Parser)

    data_help = "digits | mnist:DIR | PATH.npz (arrays X, y)"
    train = commands.add_parser("train", help="train a preset network and write model, checkpoint, plots")
    # The settings of a run default to None here, SETTINGS fills them: --resume must know which were given.
    train.add_argument("--data", help=f"{data_help} (default: digits)")
    train.add_argument("--model", choices=models.PRESETS,
                       help="network preset: mlp, cnn or resnet (a small residual CNN; default: mlp)")
    train.add_argument("--hidden", type=hidden_sizes,
                       help="hidden layer sizes of the dense part (default: 256,128; none for resnet)")
    train.add_argument("--epochs", type=integer(1), help="default: 20")
    train.add_argument("--batch-size", type=integer(1), help="default: 64")
    train.add_argument("--optimizer", choices=("sgd", "adam"), help="default: adam")
    train.add_argument("--lr", type=positive_float,
                       help="learning rate (default: 1e-3 for adam, 0.1 for sgd)")
    train.add_argument("--seed", type=integer(0), help="seed of the weights and the batch order (default: 0)")
    train.add_argument("--out", help="output directory (default: runs/<data>-<model>)")
    train.add_argument("--resume", action="store_true",
                       help="continue from OUT/checkpoint.npz, with the settings it records (--epochs may "
                            "extend the run; other options given are ignored, and said so)")
    train.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars")
    train.add_argument("--threads", type=thread_count, default="auto",
                       help="BLAS threads: auto (measured while training, re-measured when the load "
                            "changes) or a fixed N, for results repeatable to the bit (default: auto)")
    train.add_argument("--inspect", nargs="?", const=DEFAULT_EVERY, type=integer(1), metavar="EVERY",
                       help="record every layer's statistics every EVERY steps (default when given: "
                            f"{DEFAULT_EVERY}), print warnings, write inspect.json and inspect.png")
    train.add_argument("--tensorboard", metavar="DIR",
                       help="write TensorBoard event files into DIR: loss, accuracy, learning rate, "
                            "per-layer statistics and histograms (needs numtorch[tensorboard])")

    evaluate_command = commands.add_parser("evaluate", help="loss, accuracy and confusion on a test set")
    evaluate_command.add_argument("model", metavar="MODEL.npz")
    evaluate_command.add_argument("--data", help=f"{data_help} (default: what the model was trained on, "
                                  "as its file records; digits for a file that does not say)")
    evaluate_command.add_argument("--custom", **CUSTOM_OPTION)

    inspect_command = commands.add_parser(
        "inspect", help="print the warnings of a run trained with --inspect and draw its inspect.png again")
    inspect_command.add_argument("run", metavar="RUN_DIR",
                                 help="the --out folder of numtorch train --inspect")
    inspect_command.add_argument("--png", metavar="PATH", help="where to draw (default: RUN_DIR/inspect.png)")

    summary = commands.add_parser("summary", help="layers, output shapes and parameter counts")
    summary.add_argument("model", metavar="MODEL.npz")
    summary.add_argument("--custom", **CUSTOM_OPTION)

    export = commands.add_parser("export", help="write a saved model as ONNX (opset 17), to run anywhere")
    export.add_argument("model", metavar="MODEL.npz")
    export.add_argument("onnx", metavar="MODEL.onnx")
    export.add_argument("--input-shape", type=sample_shape,
                        help="the shape of one sample, e.g. 1,28,28 (default: the one MODEL.npz records)")
    export.add_argument("--custom", **CUSTOM_OPTION)

    import_command = commands.add_parser("import", help="read an ONNX model into a numtorch model file")
    import_command.add_argument("onnx", metavar="MODEL.onnx")
    import_command.add_argument("model", metavar="MODEL.npz")
    return parser


def load_data(spec):
    """``(X_train, y_train), (X_test, y_test), note`` for a ``--data`` value."""
    if spec == "digits":
        train, test = load_digits(TEST_FRACTION, seed=0)
        return train, test, "scikit-learn digits, fixed 80/20 split"
    if spec.startswith("mnist:"):
        directory = spec[len("mnist:"):]
        if not os.path.isdir(directory):
            raise FileNotFoundError(f"--data {spec}: {directory!r} is not a directory")
        splits = mnist_splits(directory)
        if splits == ["train", "test"]:
            return load_mnist(directory, "train"), load_mnist(directory, "test"), f"{directory}: train / t10k"
        if not splits:
            raise FileNotFoundError(f"--data {spec}: no MNIST IDX files (train-images-idx3-ubyte[.gz], "
                                    f"t10k-images-idx3-ubyte[.gz] and their labels) in {directory}")
        X, y = load_mnist(directory, splits[0])
        cut = len(y) - int(round(TEST_FRACTION * len(y)))
        note = (f"{directory}: only the {splits[0]} split, first {cut} images to train, "
                f"last {len(y) - cut} to test")
        return (X[:cut], y[:cut]), (X[cut:], y[cut:]), note
    if spec.endswith(".npz"):
        X, y = load_npz(spec)
        train, test = train_test_split(X, y, TEST_FRACTION, seed=0)
        return train, test, f"{spec}: 80/20 split"
    raise ValueError(f"--data: expected digits, mnist:DIR or PATH.npz, got {spec!r}")


def run_name(spec):
    """``digits``, ``mnist`` or the .npz file's name: the default output folder's prefix."""
    if spec.startswith("mnist:"):
        return "mnist"
    return os.path.splitext(os.path.basename(spec))[0]


def fit_to(X, shape, what):
    """``X`` reshaped to samples of ``shape`` (an MLP's flat vectors), or a clear error."""
    if int(np.prod(X.shape[1:])) != int(np.prod(shape)):
        raise ValueError(f"{what}: samples of shape {X.shape[1:]} do not fit the model's input "
                         f"{tuple(shape)}")
    return X.reshape(len(X), *shape)


def pyplot():
    """matplotlib's pyplot on the file-only Agg backend (imported when a plot is drawn)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_curves(history, path):
    from matplotlib.ticker import MaxNLocator

    plt = pyplot()
    figure, (loss_axes, accuracy_axes) = plt.subplots(1, 2, figsize=(10, 4))
    panels = ((loss_axes, "loss", "loss", "mean cross-entropy"),
              (accuracy_axes, "accuracy", "accuracy", "fraction classified correctly"))
    for axes, key, title, ylabel in panels:
        axes.plot(history["epoch"], history[f"train_{key}"], marker="o", label="train")
        if any(value is not None for value in history[f"val_{key}"]):
            axes.plot(history["epoch"], history[f"val_{key}"], marker="o", label="validation")
        axes.set_xlabel("epoch")
        axes.set_ylabel(ylabel)
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.set_title(title)
        axes.grid(alpha=0.3)
        axes.legend()
    figure.tight_layout()
    atomic_write(path, lambda file: figure.savefig(file, format="png", dpi=80))
    plt.close(figure)


def plot_confusion(confusion, accuracy, path):
    plt = pyplot()
    classes = len(confusion)
    figure, axes = plt.subplots(figsize=(5.5, 5))
    axes.imshow(confusion, cmap="Blues")
    if classes <= ANNOTATED_CLASSES:  # beyond, the counts would not be legible (and take long to draw)
        for true in range(classes):
            for guess in range(classes):
                color = "white" if confusion[true, guess] > confusion.max() / 2 else "black"
                axes.text(guess, true, str(confusion[true, guess]), ha="center", va="center", color=color,
                          fontsize=8)
        axes.set_xticks(range(classes))
        axes.set_yticks(range(classes))
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    axes.set_title(f"test confusion (accuracy {accuracy:.2%})")
    figure.tight_layout()
    atomic_write(path, lambda file: figure.savefig(file, format="png", dpi=80))
    plt.close(figure)


def check_training_memory(args, sample_shape, classes):
    """Refuse, before building anything, a run whose network or confusion matrix cannot fit in memory.

    The network: its dense layers (the convolutional presets' feature part is small and not counted),
    float32 weights and gradients, the optimizer's buffers (Adam two, SGD with momentum one) and the
    float64 draw of the largest layer's initial weights. The confusion matrix: classes x classes int64.
    """
    confusion_bytes = 8 * classes**2
    check_memory(confusion_bytes, f"--data: labels up to {classes - 1:,}, so {classes:,} classes: the test "
                 "confusion matrix", "labels are expected to be 0 .. C-1 for C classes")
    sizes = [*args.hidden, classes]
    layers = [(a + 1) * b for a, b in zip(sizes, sizes[1:])]
    if args.model == "mlp":
        layers.append((int(np.prod(sample_shape)) + 1) * sizes[0])
    buffers = 2 if args.optimizer == "adam" else 1
    check_memory(4 * sum(layers) * (2 + buffers) + 8 * max(layers, default=0),
                 f"--hidden {','.join(map(str, args.hidden))}: training {sum(layers):,} weights (with their "
                 f"gradients and {args.optimizer}'s state)", "choose smaller sizes")


def absolute_data(spec):
    """``--data`` with its file or folder made absolute: what a record keeps, to be found from anywhere."""
    if spec.startswith("mnist:"):
        return "mnist:" + os.path.abspath(spec[len("mnist:"):])
    return os.path.abspath(spec) if spec.endswith(".npz") else spec


def recorded_settings(checkpoint):
    """``(settings, position)`` a checkpoint of ``numtorch train`` records (settings None: it does not)."""
    meta = read_header(checkpoint)
    state = meta.get("state") if isinstance(meta.get("state"), dict) else {}
    sums = state.get("epoch_sums") if isinstance(state.get("epoch_sums"), dict) else {}
    position = Position(meta.get("epoch"), sums.get("batches", 0))
    settings = state.get("run_info")
    if settings is None:
        return None, position
    try:
        valid = (settings.keys() == SETTINGS.keys() and isinstance(settings["data"], str)
                 and settings["model"] in models.PRESETS and settings["optimizer"] in DEFAULT_LR
                 and isinstance(settings["hidden"], list)
                 and all(type(value) is int and value >= 1
                         for value in (*settings["hidden"], settings["batch_size"], settings["epochs"]))
                 and type(settings["seed"]) is int and settings["seed"] >= 0
                 and type(settings["lr"]) in (int, float) and 0 < settings["lr"] < float("inf"))
    except (AttributeError, TypeError):
        valid = False
    if not valid:
        raise ValueError(f"{checkpoint}: corrupt checkpoint header (the run's settings)")
    return settings, position


def run_settings(args, recorded):
    """``(settings, ignored)``: the settings that run, and the given options they override.

    A new run: the given options over the defaults (``SETTINGS``). With ``--resume``, the
    checkpoint's recorded settings run, except ``--epochs``, which may extend the run; any other
    option given with another value is ignored (and reported).
    """
    given = {key: getattr(args, key) for key in SETTINGS if getattr(args, key) is not None}
    if recorded is None:
        settings = {**SETTINGS, **given}
        settings["data"] = absolute_data(settings["data"])
        settings["lr"] = settings["lr"] or DEFAULT_LR[settings["optimizer"]]
        if settings["hidden"] is None:
            settings["hidden"] = models.DEFAULT_HIDDEN[settings["model"]]
        return settings, {}
    settings = {**recorded, "epochs": given.get("epochs", recorded["epochs"])}
    ignored = {key: value for key, value in given.items()
               if key != "epochs" and (absolute_data(value) if key == "data" else value) != recorded[key]}
    return settings, ignored


def option(key, value):
    """``--batch-size 32``, ``--hidden 64,32``: a setting as it is written on the command line."""
    return f"--{key.replace('_', '-')} " + (",".join(map(str, value)) if key == "hidden" else f"{value}")


def position_text(position, epochs, batches):
    """``at epoch 3 of 20`` or ``in epoch 4 of 20, after batch 8 of 21``."""
    if position.batch:
        return f"in epoch {position.epoch + 1} of {epochs}, after batch {position.batch} of {batches}"
    return f"at epoch {position.epoch} of {epochs}"


def command_train(args):
    """Claim the output folder (checked and locked before any data is loaded), then train in it."""
    data, model = args.data or SETTINGS["data"], args.model or SETTINGS["model"]
    out = args.out or os.path.join("runs", f"{run_name(data)}-{model}")
    if not distributed.is_root():  # under mpiexec rank 0 alone claims and writes the folder
        return train_run(out, args)
    with run_folder.claim(out, outputs(args)) as folder:
        if folder.stale_pid is not None:
            print(f"numtorch train: note: took over the lock of {out} from PID {folder.stale_pid}, "
                  "a run that ended without releasing it", file=sys.stderr)
        return train_run(out, args)


def outputs(args):
    """The files ``numtorch train`` writes into ``--out``."""
    return OUTPUTS + (INSPECT_OUTPUTS if args.inspect else ())


def train_run(out, args):
    """The settings that run (the checkpoint's with ``--resume``), then training; a Ctrl-C says what it
    leaves in words."""
    checkpoint = os.path.join(out, "checkpoint.npz")
    recorded = position = None
    if args.resume:
        if distributed.is_root() and not os.path.exists(checkpoint):
            raise FileNotFoundError(f"--resume: no checkpoint to resume from at {checkpoint}")
        recorded, position = distributed.broadcast(recorded_settings(checkpoint) if distributed.is_root()
                                                   else None)
    settings, ignored = run_settings(args, recorded)
    if args.resume and recorded is None:
        ignored = None  # nothing to compare with: the options given run
    args = argparse.Namespace(**{**vars(args), **settings}, ignored=ignored, resumed_at=position)
    # What a Ctrl-C leaves: train_in keeps it up to date; fit's Interrupted says it, when in fit.
    run = SimpleNamespace(saved=position, batches=None)
    try:
        return train_in(out, args, run)
    except KeyboardInterrupt as error:
        saved = error.saved if isinstance(error, Interrupted) else run.saved
        if saved is None:
            raise KeyboardInterrupt("nothing was saved") from None
        threads = "" if args.threads == "auto" else f" --threads {args.threads}"  # bit for bit: same count
        raise KeyboardInterrupt(f"saved checkpoint {position_text(saved, args.epochs, run.batches)} "
                                f"({checkpoint}): rerun with --resume to continue: numtorch train "
                                f"--resume --out {shlex.quote(out)}{threads}") from None


def train_in(out, args, run):
    started = time.perf_counter()
    checkpoint = os.path.join(out, "checkpoint.npz")
    (X, y), (X_test, y_test), note = load_data(args.data)
    (X_train, y_train), (X_val, y_val) = train_test_split(X, y, VAL_FRACTION, seed=0)
    classes = int(max(y.max(), y_test.max())) + 1
    check_training_memory(args, X.shape[1:], classes)

    if args.threads != "auto":
        set_num_threads(args.threads)
    manual_seed(args.seed)
    model, input_shape = models.build(args.model, X.shape[1:], classes, args.hidden)
    X_train, X_val, X_test = (fit_to(a, input_shape, "--data") for a in (X_train, X_val, X_test))
    lr = args.lr
    optimizer = Adam(model, lr=lr) if args.optimizer == "adam" else SGD(model, lr=lr, momentum=0.9)
    parameters = sum(p.size for p in flatten(model.getParameters()))
    run.batches = -(-len(y_train) // args.batch_size)
    say(f"data: {note}; {len(y_train)} train, {len(y_val)} validation, {len(y_test)} test samples, "
        f"{classes} classes")
    say(f"model: {args.model}, {parameters:,} parameters; {optimizer!r}, batch {args.batch_size}, "
        f"{args.epochs} epochs, seed {args.seed}{processes_note()}")
    if args.resume:
        say(resume_text(args, run.batches))

    inspector = None
    if (args.inspect or args.tensorboard) and distributed.is_root():
        inspector = Inspector(model, every=args.inspect or DEFAULT_EVERY, tensorboard=args.tensorboard)
        previous = os.path.join(out, "inspect.json")
        if args.resume and args.inspect and os.path.exists(previous):
            inspector.resume(load_inspection(previous))
    try:
        history = fit(model, CrossEntropyCriterion(), optimizer, (X_train, y_train), val=(X_val, y_val),
                      epochs=args.epochs, batch_size=args.batch_size, seed=args.seed, checkpoint=checkpoint,
                      resume=args.resume, progress=args.progress,
                      run_info={key: getattr(args, key) for key in SETTINGS}, inspect=inspector)
    except Diverged as error:
        kept = ("nothing was saved" if error.saved is None else
                f"the checkpoint {position_text(error.saved, args.epochs, run.batches)} is intact")
        raise ValueError(f"training diverged: {error.where} (lr {error.lr:g}: try a smaller --lr); "
                         f"{kept}") from None
    finally:
        if inspector is not None:
            inspector.close()
            if args.inspect and inspector.records:  # a run that stopped too: the records show what led there
                inspector.save(os.path.join(out, "inspect.json"))
                inspector.plot(os.path.join(out, "inspect.png"))
    run.saved = Position(args.epochs, 0)
    test = evaluate(model, X_test, y_test)
    seconds = time.perf_counter() - started
    if not distributed.is_root():
        return 0

    save(model, os.path.join(out, "model.npz"), input_shape=input_shape,
         info={key: getattr(args, key) for key in SETTINGS})
    record = {"data": args.data, "model": args.model, "hidden": args.hidden, "optimizer": args.optimizer,
              "lr": lr, "batch_size": args.batch_size, "epochs": args.epochs, "seed": args.seed,
              "ignored_options": args.ignored,
              "architecture": architecture(model), "history": history,
              "test": {"loss": test.loss, "accuracy": test.accuracy, "confusion": test.confusion.tolist()},
              "seconds": seconds}
    atomic_write(os.path.join(out, "history.json"),
                 lambda file: file.write(strict_json(record, indent=1).encode()))
    plot_curves(history, os.path.join(out, "curves.png"))
    plot_confusion(test.confusion, test.accuracy, os.path.join(out, "confusion.png"))
    say(f"test: accuracy {test.accuracy:.4f}, loss {test.loss:.4f} on {len(y_test)} samples "
        f"({seconds:.1f} s)")
    say(f"wrote {out}/: {' '.join(outputs(args))}")
    return 0


def resume_text(args, batches):
    """``resuming at epoch 4 of 20``, then a line for the options given that the checkpoint overrides."""
    done, batch = args.resumed_at
    if batch:
        text = f"resuming in epoch {done + 1} of {args.epochs}, at batch {batch + 1} of {batches}"
    elif done < args.epochs:
        text = f"resuming at epoch {done + 1} of {args.epochs}"
    else:
        text = f"resuming after epoch {done} of {args.epochs}: training is done, the results are written"
    if args.ignored is None:
        return text + ("\nthe checkpoint records no settings (an older numtorch wrote it): the options given "
                       "run")
    if args.ignored:
        text += ("\nignored with --resume, the checkpoint's settings run: "
                 + ", ".join(f"{option(key, value)} (runs {option(key, getattr(args, key))})"
                             for key, value in args.ignored.items()))
    return text


def custom_layers(specs):
    """The Module classes defined in each ``--custom`` FILE.py or package.module, which is imported."""
    classes = []
    for spec in specs:
        if spec.endswith(".py"):
            if not os.path.isfile(spec):
                raise FileNotFoundError(f"--custom {spec}: no such file")
            name = "numtorch_custom_" + os.path.splitext(os.path.basename(spec))[0]
            module_spec = importlib.util.spec_from_file_location(name, spec)
            module = importlib.util.module_from_spec(module_spec)
            module_spec.loader.exec_module(module)
        else:
            module = importlib.import_module(spec)
        found = [value for value in vars(module).values() if isinstance(value, type)
                 and issubclass(value, Module) and value.__module__ == module.__name__]
        if not found:
            raise ValueError(f"--custom {spec}: defines no numtorch Module subclass")
        classes += found
    return classes


def processes_note():
    """``", 3 processes (global batch)"`` under mpiexec, else ``""``."""
    return f", {distributed.size()} processes (global batch)" if distributed.size() > 1 else ""


def command_evaluate(args):
    model, meta = load_with_metadata(args.model, custom=custom_layers(args.custom))
    data = args.data or trained_on(meta)
    if data is None:
        data, source = SETTINGS["data"], " (the default: the model file does not say what it was trained on)"
    else:
        source = "" if args.data else " (what it was trained on)"
    _, (X, y), note = load_data(data)
    if meta.get("input_shape") is not None:
        X = fit_to(X, meta["input_shape"], f"--data {data}")
    outputs = model.evaluate().forward(X[:1]).shape[1]
    classes = max(int(y.max()) + 1, outputs)
    check_memory(8 * classes**2, f"{args.model}: {outputs:,} outputs, so its {classes:,} x {classes:,} "
                 "confusion matrix", "this command cannot measure it")
    result = evaluate(model, X, y)
    say(f"{args.model} on {note}{source}, {len(y)} test samples")
    say(f"accuracy {result.accuracy:.4f}, loss {result.loss:.4f}")
    say("confusion (rows: true class, columns: predicted):")
    width = len(str(result.confusion.max()))
    for true, row in enumerate(result.confusion):
        say(f"  {true:>3} | " + " ".join(f"{count:>{width}}" for count in row))
    return 0


def trained_on(meta):
    """The ``--data`` a model file records it was trained on (``numtorch train`` writes it), or None."""
    info = meta.get("info")
    data = info.get("data") if isinstance(info, dict) else None
    return data if isinstance(data, str) else None


def command_summary(args):
    model, meta = load_with_metadata(args.model, custom=custom_layers(args.custom))
    shape = meta.get("input_shape")
    if shape is not None:
        parameters = flatten(model.getParameters())
        itemsize = parameters[0].itemsize if parameters else 4
        check_memory(math.prod(shape) * itemsize, f"{args.model}: input_shape {tuple(shape)}: one sample of "
                     "zeros to find the output shapes", "this command cannot show them")
    say(f"{args.model}: input {'(N, ' + ', '.join(map(str, shape)) + ')' if shape else 'shape unknown'}")
    say(summary(model, shape))
    return 0


def shape_text(shape):
    return "(N, " + ", ".join(map(str, shape)) + ")"


def command_export(args):
    from numtorch import onnx as numtorch_onnx  # needs the onnx extra

    model, meta = load_with_metadata(args.model, custom=custom_layers(args.custom))
    shape = args.input_shape or meta.get("input_shape")
    if shape is None:
        raise ValueError(f"{args.model} records no input shape: give the shape of one sample with "
                         "--input-shape, e.g. --input-shape 1,28,28")
    numtorch_onnx.export(model, args.onnx, tuple(shape))
    parameters = sum(p.size for p in flatten(model.getParameters()))
    say(f"wrote {args.onnx}: ONNX opset {numtorch_onnx.OPSET}, input {shape_text(shape)} float32, "
        f"{parameters:,} parameters")
    return 0


def command_import(args):
    from numtorch import onnx as numtorch_onnx  # needs the onnx extra

    model, shape = numtorch_onnx.load_with_input_shape(args.onnx)
    save(model, args.model, input_shape=shape)
    parameters = sum(p.size for p in flatten(model.getParameters()))
    say(f"wrote {args.model}: input {shape_text(shape)}, {parameters:,} parameters, "
        f"{sum(1 for _ in walk(model)) - 1} modules (numtorch summary {args.model} shows them)")
    return 0


def command_inspect(args):
    if not os.path.isdir(args.run):
        raise FileNotFoundError(f"{args.run}: no such folder")
    path = os.path.join(args.run, "inspect.json")
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: no such file (numtorch train --inspect writes it)")
    report = load_inspection(path)
    steps = [record["step"] for record in report["records"]]
    span = f", steps {steps[0]} to {steps[-1]}" if steps else ""
    say(f"{path}: {len(report['modules'])} modules, {len(steps)} records every {report['every']} steps{span}")
    warnings = replay(report["modules"], report["records"])
    report["warnings"] = [{"key": list(w.key), "step": w.step, "text": w.text} for w in warnings]
    for warning in warnings:
        say(f"warning at step {warning.step}: {warning.text}")
    if not warnings:
        say("no warnings")
    if steps:
        png = args.png or os.path.join(args.run, "inspect.png")
        plot_inspection(report, png)
        say(f"wrote {png}")
    return 0


COMMANDS = {"train": command_train, "evaluate": command_evaluate, "summary": command_summary,
            "export": command_export, "import": command_import, "inspect": command_inspect}


def main(argv=None):
    args = build_parser().parse_args(argv)
    who = f"numtorch {args.command}"
    try:
        who += distributed.describe()
        # NumPy's floating-point warnings are not how the command line reports: training stops at the
        # first non-finite loss or weights with one clear line, evaluate prints what it measured.
        with np.errstate(all="ignore"):
            return COMMANDS[args.command](args)
    except KeyboardInterrupt as interruption:
        print(f"{who}: interrupted" + (f": {interruption}" if str(interruption) else ""), file=sys.stderr)
        distributed.abort(130)  # under mpiexec: end every rank (the others may wait in a collective)
        return 130
    except Exception as error:
        if os.environ.get("NUMTORCH_TRACEBACK") == "1":
            raise
        print(f"{who}: error: {error_text(error)}", file=sys.stderr)
        distributed.abort(1)
        return 1


def error_text(error):
    """One line for an error: the message of the errors numtorch raises on purpose, else its type too."""
    if isinstance(error, MemoryError):
        return "not enough memory" + (f": {error}" if str(error) else "")
    if isinstance(error, (ValueError, TypeError, OSError, ImportError, FloatingPointError)):
        return str(error)
    return (f"{type(error).__name__}: {error} (unexpected: set NUMTORCH_TRACEBACK=1 to see where, "
            "and please report it with the output of numtorch --version)")
