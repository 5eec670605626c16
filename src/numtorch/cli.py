"""The ``numtorch`` command: ``train``, ``evaluate`` and ``summary``.

``numtorch train`` loads a dataset, builds a preset network, fits it with
progress bars, measures the test set and writes into ``--out``:
``model.npz``, ``checkpoint.npz`` (after every epoch; ``--resume`` continues
from it), ``history.json``, ``curves.png`` and ``confusion.png``.

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
"""

import argparse
import os
import shlex
import sys
import time
from types import SimpleNamespace

import numpy as np
import scipy

import numtorch
from numtorch import run_folder
from numtorch.containers import Sequential
from numtorch.criterions import CrossEntropyCriterion
from numtorch.data import load_digits, load_mnist, load_npz, mnist_splits, train_test_split
from numtorch.io import architecture, load_with_metadata, read_header, save
from numtorch.io.archive import atomic_write, strict_json
from numtorch.layers import Conv2d, Flatten, Linear, MaxPool2d, ReLU
from numtorch.module import flatten
from numtorch.optim import SGD, Adam
from numtorch.random import manual_seed
from numtorch.train import Diverged, Interrupted, Position, evaluate, fit

DEFAULT_LR = {"adam": 1e-3, "sgd": 0.1}
SETTINGS = {"data": "digits", "model": "mlp", "hidden": [256, 128], "optimizer": "adam", "lr": None,
            "batch_size": 64, "epochs": 20, "seed": 0}  # a run's settings and their defaults
OUTPUTS = ("model.npz", "checkpoint.npz", "history.json", "curves.png", "confusion.png")
VAL_FRACTION = 0.1
TEST_FRACTION = 0.2


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors, ``numtorch train: error: ...``, and exit status 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def say(*parts):
    """Print a line on stdout. A closed stdout (``| head``) silences the rest of the output, not the work."""
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


def hidden_sizes(text):
    try:
        sizes = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected sizes like 256,128, got {text!r}") from None
    if any(size < 1 for size in sizes):
        raise argparse.ArgumentTypeError(f"expected positive sizes like 256,128, got {text!r}")
    return sizes


def build_parser():
    parser = Parser(prog="numtorch", description="Train, evaluate and inspect numtorch models.")
    parser.add_argument("--version", action="version", version=version())
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                     parser_class=Parser)

    data_help = "digits | mnist:DIR | PATH.npz (arrays X, y)"
    train = commands.add_parser("train", help="train a preset network and write model, checkpoint, plots")
    # The settings of a run default to None here, SETTINGS fills them: --resume must know which were given.
    train.add_argument("--data", help=f"{data_help} (default: digits)")
    train.add_argument("--model", choices=("mlp", "cnn"), help="network preset (default: mlp)")
    train.add_argument("--hidden", type=hidden_sizes,
                       help="hidden layer sizes of the dense part (default: 256,128)")
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

    evaluate_command = commands.add_parser("evaluate", help="loss, accuracy and confusion on a test set")
    evaluate_command.add_argument("model", metavar="MODEL.npz")
    evaluate_command.add_argument("--data", help=f"{data_help} (default: what the model was trained on, "
                                  "as its file records; digits for a file that does not say)")

    summary = commands.add_parser("summary", help="layers, output shapes and parameter counts")
    summary.add_argument("model", metavar="MODEL.npz")
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


def build_model(kind, sample_shape, hidden, classes):
    """The preset network and the sample shape it takes.

    ``mlp``: Linear/ReLU layers of ``hidden`` sizes on the flattened sample.
    ``cnn``: on (C, H, W) images, two blocks Conv2d(3x3, same size) -> ReLU ->
    MaxPool2d(2) with 16 and 32 channels, Flatten, then the ``hidden`` layers.
    """
    if kind == "cnn":
        if len(sample_shape) != 3:
            raise ValueError(f"--model cnn: expected images (N, C, H, W), got samples of shape "
                             f"{tuple(sample_shape)}")
        channels = sample_shape[0]
        features = Sequential(Conv2d(channels, 16, 3), ReLU(), MaxPool2d(2),
                              Conv2d(16, 32, 3), ReLU(), MaxPool2d(2), Flatten())
        layers = list(features.modules)
        width = features.forward(np.zeros((1, *sample_shape), np.float32)).shape[1]
        input_shape = tuple(sample_shape)
    else:
        layers, width = [], int(np.prod(sample_shape))
        input_shape = (width,)
    for size in hidden:
        layers += [Linear(width, size), ReLU()]
        width = size
    layers.append(Linear(width, classes))
    return Sequential(*layers), input_shape


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
                 and settings["model"] in ("mlp", "cnn") and settings["optimizer"] in DEFAULT_LR
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
    with run_folder.claim(out, OUTPUTS) as folder:
        if folder.stale_pid is not None:
            print(f"numtorch train: note: took over the lock of {out} from PID {folder.stale_pid}, "
                  "a run that ended without releasing it", file=sys.stderr)
        checkpoint = os.path.join(out, "checkpoint.npz")
        recorded = position = None
        if args.resume:
            if not os.path.exists(checkpoint):
                raise FileNotFoundError(f"--resume: no checkpoint to resume from at {checkpoint}")
            recorded, position = recorded_settings(checkpoint)
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
            raise KeyboardInterrupt(f"saved checkpoint {position_text(saved, args.epochs, run.batches)} "
                                    f"({checkpoint}): rerun with --resume to continue: numtorch train "
                                    f"--resume --out {shlex.quote(out)}") from None


def train_in(out, args, run):
    started = time.perf_counter()
    checkpoint = os.path.join(out, "checkpoint.npz")
    (X, y), (X_test, y_test), note = load_data(args.data)
    (X_train, y_train), (X_val, y_val) = train_test_split(X, y, VAL_FRACTION, seed=0)
    classes = int(max(y.max(), y_test.max())) + 1

    manual_seed(args.seed)
    model, input_shape = build_model(args.model, X.shape[1:], args.hidden, classes)
    X_train, X_val, X_test = (fit_to(a, input_shape, "--data") for a in (X_train, X_val, X_test))
    lr = args.lr
    optimizer = Adam(model, lr=lr) if args.optimizer == "adam" else SGD(model, lr=lr, momentum=0.9)
    parameters = sum(p.size for p in flatten(model.getParameters()))
    run.batches = -(-len(y_train) // args.batch_size)
    say(f"data: {note}; {len(y_train)} train, {len(y_val)} validation, {len(y_test)} test samples, "
        f"{classes} classes")
    say(f"model: {args.model}, {parameters:,} parameters; {optimizer!r}, batch {args.batch_size}, "
        f"{args.epochs} epochs, seed {args.seed}")
    if args.resume:
        say(resume_text(args, run.batches))

    try:
        history = fit(model, CrossEntropyCriterion(), optimizer, (X_train, y_train), val=(X_val, y_val),
                      epochs=args.epochs, batch_size=args.batch_size, seed=args.seed, checkpoint=checkpoint,
                      resume=args.resume, progress=args.progress,
                      run_info={key: getattr(args, key) for key in SETTINGS})
    except Diverged as error:
        kept = ("nothing was saved" if error.saved is None else
                f"the checkpoint {position_text(error.saved, args.epochs, run.batches)} is intact")
        raise ValueError(f"training diverged: {error.where} (lr {error.lr:g}: try a smaller --lr); "
                         f"{kept}") from None
    run.saved = Position(args.epochs, 0)
    test = evaluate(model, X_test, y_test)
    seconds = time.perf_counter() - started

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
    say(f"wrote {out}/: {' '.join(OUTPUTS)}")
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


def command_evaluate(args):
    model, meta = load_with_metadata(args.model)
    data = args.data or trained_on(meta)
    if data is None:
        data, source = SETTINGS["data"], " (the default: the model file does not say what it was trained on)"
    else:
        source = "" if args.data else " (what it was trained on)"
    _, (X, y), note = load_data(data)
    if meta.get("input_shape") is not None:
        X = fit_to(X, meta["input_shape"], f"--data {data}")
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


def summary_rows(module, x, depth=0):
    """``(indented name, output shape or None, parameter count)`` per layer, feeding ``x`` through."""
    if isinstance(module, Sequential):
        rows = [("  " * depth + "Sequential", None, None)]
        for child in module.modules:
            child_rows, x = summary_rows(child, x, depth + 1)
            rows += child_rows
        return rows, x
    x = module.forward(x) if x is not None else None
    count = sum(p.size for p in module.getParameters())
    return [("  " * depth + repr(module), None if x is None else x.shape[1:], count)], x


def command_summary(args):
    model, meta = load_with_metadata(args.model)
    model.evaluate()
    shape = meta.get("input_shape")
    parameters = flatten(model.getParameters())
    dtype = parameters[0].dtype if parameters else np.float32
    x = np.zeros((1, *shape), dtype=dtype) if shape is not None else None
    rows, _ = summary_rows(model, x)
    name_width = max(len(name) for name, _, _ in rows)
    say(f"{args.model}: input {'(N, ' + ', '.join(map(str, shape)) + ')' if shape else 'shape unknown'}")
    say(f"{'layer':<{name_width}}  {'output':<18} {'parameters':>10}")
    for name, output, count in rows:
        output_text = "" if output is None else "(N, " + ", ".join(map(str, output)) + ")"
        say(f"{name:<{name_width}}  {output_text:<18} {'' if count is None else f'{count:,}':>10}")
    total = sum(p.size for p in parameters)
    say(f"total: {total:,} parameters")
    return 0


COMMANDS = {"train": command_train, "evaluate": command_evaluate, "summary": command_summary}


def main(argv=None):
    args = build_parser().parse_args(argv)
    who = f"numtorch {args.command}"
    try:
        # NumPy's floating-point warnings are not how the command line reports: training stops at the
        # first non-finite loss or weights with one clear line, evaluate prints what it measured.
        with np.errstate(all="ignore"):
            return COMMANDS[args.command](args)
    except KeyboardInterrupt as interruption:
        print(f"{who}: interrupted" + (f": {interruption}" if str(interruption) else ""), file=sys.stderr)
        return 130
    except Exception as error:
        if os.environ.get("NUMTORCH_TRACEBACK") == "1":
            raise
        print(f"{who}: error: {error_text(error)}", file=sys.stderr)
        return 1


def error_text(error):
    """One line for an error: the message of the errors numtorch raises on purpose, else its type too."""
    if isinstance(error, MemoryError):
        return "not enough memory" + (f": {error}" if str(error) else "")
    if isinstance(error, (ValueError, TypeError, OSError, ImportError)):
        return str(error)
    return (f"{type(error).__name__}: {error} (unexpected: set NUMTORCH_TRACEBACK=1 to see where, "
            "and please report it with the output of numtorch --version)")
