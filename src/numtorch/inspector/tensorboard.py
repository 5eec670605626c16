"""TensorBoard event files of an inspected run, through tensorboardX (``numtorch[tensorboard]``).

At every recorded step, per module (a section named by its path and class,
``00.02_Conv2d``, indices zero-padded so sections sort in network order):

- scalars ``output_mean``, ``output_std``, ``output_min``, ``output_max``,
  ``output_zeros``, ``output_dead``, ``output_saturated`` (Tanh, Sigmoid),
  ``grad_input_norm`` and per parameter ``W_norm``, ``W_grad_norm``,
  ``W_update_ratio``;
- histograms ``output``, ``gradInput`` and per parameter ``W``, ``W_grad``;

and the step's ``train/loss``. ``Inspector.log_epoch`` adds the epoch's
figures (``epoch/train_loss``, ``epoch/val_accuracy``, ``epoch/lr`` ...) at the
step that ends the epoch. ``tensorboard --logdir DIR`` shows them.
"""

import numpy as np

from numtorch._table import leaves
from numtorch.inspector.statistics import parameter_items


def section(name, width):
    """A TensorBoard-safe section for a module name: ``(1).(0).(2) Conv2d`` -> ``01.00.02_Conv2d``."""
    path, _, kind = name.rpartition(" ")
    indices = [part.strip("()") for part in path.split(".")] if path else []
    return ".".join(index.zfill(width) for index in indices) + ("_" if indices else "") + kind


def finite_values(data):
    """The finite values of an array or table as one array (TensorBoard's histograms refuse the rest)."""
    arrays = [a.reshape(-1) for a in leaves(data) if isinstance(a, np.ndarray)] if data is not None else []
    if not arrays:
        return None
    values = np.concatenate(arrays) if len(arrays) > 1 else arrays[0]
    values = values[np.isfinite(values)]
    return values if values.size else None


class TensorBoard:
    """Writes an inspector's records (and epoch figures) to event files in ``directory``."""

    def __init__(self, directory):
        try:
            from tensorboardX import SummaryWriter
        except ImportError:
            raise ImportError("TensorBoard logs need tensorboardX: "
                              "pip install 'numtorch[tensorboard]'") from None
        self.directory = directory
        self.writer = SummaryWriter(logdir=directory)
        self.width = None

    def scalars(self, step, values):
        for tag, value in values.items():
            if value is not None and np.isfinite(value):
                self.writer.add_scalar(tag, float(value), step)

    def histogram(self, tag, data, step):
        values = finite_values(data)
        if values is not None:
            self.writer.add_histogram(tag, values, step)

    def record(self, record, layers):
        """One record's statistics, and histograms of the ``layers`` (``(name, module)``) arrays now."""
        if self.width is None:
            indices = [part for name, _ in layers for part in name.rpartition(" ")[0].split(".") if part]
            self.width = max((len(index.strip("()")) for index in indices), default=1)
        step = record["step"]
        self.scalars(step, {"train/loss": record["loss"]})
        for name, module in layers:
            tag = section(name, self.width)
            stats = record["modules"][name]
            values = {f"{tag}/grad_input_norm": stats["grad_input_norm"]}
            output = stats["output"] or {}
            for key in ("mean", "std", "min", "max", "zeros", "dead", "saturated"):
                values[f"{tag}/output_{key}"] = output.get(key)
            for param, numbers in stats["parameters"].items():
                for key, value in numbers.items():
                    values[f"{tag}/{param}_{key}"] = value
            self.scalars(step, values)
            self.histogram(f"{tag}/output", module.output, step)
            self.histogram(f"{tag}/gradInput", module.gradInput, step)
            for param, array, grad in parameter_items(module):
                self.histogram(f"{tag}/{param}", array, step)
                self.histogram(f"{tag}/{param}_grad", grad, step)

    def close(self):
        self.writer.close()
