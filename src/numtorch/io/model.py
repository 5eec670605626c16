"""Save and load a model as one ``.npz`` file, without pickle.

A model file holds two kinds of entries:

- ``__numtorch__``: JSON text — the format version, the architecture (each
  module's class name and its ``config()``; containers list their children,
  see ``numtorch.io.architecture``) and optional metadata such as the input
  shape;
- ``model/<path>.<name>``: every parameter and buffer, e.g. ``model/0.W`` for
  the weight of a Sequential's first child.

``load`` opens the file with ``allow_pickle=False`` and rebuilds the modules
from class names it looks up among the Module subclasses already imported, so
opening a file runs no code from it. Every entry's ``.npy`` header is checked
against the rebuilt model before its data is read. Writes go to a temporary
file in the target's directory, renamed over the target only once complete.
"""

import json

import numpy as np

from numtorch._checks import check_positive_int
from numtorch.io.architecture import (
    architecture,
    build,
    describe_architecture,
    fits,
    module_classes,
    named_arrays,
)
from numtorch.io.archive import Npz, atomic_savez
from numtorch.module import Module, flatten
from numtorch.random import get_rng_state, set_rng_state

FORMAT = "numtorch"
VERSION = 1
HEADER = "__numtorch__"
MAX_HEADER_BYTES = 2**24  # the JSON header: 16 MiB of text (4 bytes a character) is far beyond any network
MIN_LAZY_SIZE = 2**16  # a lazily created buffer may hold max(the model's parameter count, this) values


def model_arrays(model):
    arrays = {}
    for key, owner, name in named_arrays(model):
        value = getattr(owner, name)
        if value is not None:
            arrays["model/" + key] = value
    return arrays


def header(kind, model, **extra):
    return {"format": FORMAT, "version": VERSION, "kind": kind, "architecture": architecture(model), **extra}


def save(model, path, input_shape=None, info=None):
    """Write ``model`` (architecture, parameters, buffers) to ``path`` as one ``.npz``.

    ``input_shape``: the shape of one sample (e.g. ``(64,)``), kept so
    ``summary`` can show output shapes and tools can reshape data to fit.
    ``info``: a dict of JSON values kept in the header, ``meta["info"]`` of
    ``load_with_metadata`` (``numtorch train`` records there the data and the
    settings the model was trained with).
    Every module's ``config()`` must rebuild it (see ``Module.config``): a
    layer whose constructor takes arguments and that does not define
    ``config()`` is a ``TypeError`` here, not a surprise at load time.
    """
    if not isinstance(model, Module):
        raise TypeError(f"save: expected a numtorch Module, got {type(model).__name__}")
    if input_shape is not None:
        if not isinstance(input_shape, (tuple, list)):
            raise TypeError(
                f"save: expected input_shape as a tuple of ints, got {type(input_shape).__name__}")
        input_shape = [check_positive_int("save", size, "every input_shape size") for size in input_shape]
    if info is not None and (not isinstance(info, dict) or not all(isinstance(key, str) for key in info)):
        raise TypeError(f"save: expected info as a dict with str keys, got {type(info).__name__}")
    meta = header("model", model, input_shape=input_shape, **({} if info is None else {"info": info}))
    try:
        text = json.dumps(meta, allow_nan=False)  # strict JSON: no bare NaN or Infinity tokens
    except ValueError:
        raise ValueError(f"save: {model!r}: expected finite numbers in config() and info, got NaN or "
                         "infinity, which strict JSON cannot hold") from None
    except TypeError as error:
        raise TypeError(f"save: expected info of JSON values ({error})") from None
    atomic_savez(path, {HEADER: np.array(text), **model_arrays(model)})


def read_meta(npz):
    """The JSON header of a numtorch file, with clear errors for anything else."""
    path = npz.path
    entry = npz.entries.get(HEADER)
    if entry is None:
        raise ValueError(f"{path}: not a numtorch file (no {HEADER} entry)")
    if entry.shape != () or entry.dtype.kind != "U" or entry.nbytes > MAX_HEADER_BYTES:
        raise ValueError(f"{path}: corrupt numtorch header (expected a text of at most {MAX_HEADER_BYTES} "
                         f"bytes, got shape {entry.shape} of {entry.dtype})")
    try:
        meta = json.loads(str(npz.read(HEADER)))
    except (json.JSONDecodeError, RecursionError) as error:
        raise ValueError(f"{path}: corrupt numtorch header ({error})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ValueError(f"{path}: not a numtorch file")
    if meta.get("version") != VERSION:
        raise ValueError(f"{path}: numtorch file version {meta.get('version')}, "
                         f"this numtorch reads version {VERSION}")
    return meta


def read_header(path):
    """The JSON header of the numtorch file (model or checkpoint) at ``path``; no array is read."""
    with Npz(path) as npz:
        return read_meta(npz)


def read(path):
    """``(meta, arrays)``: the JSON header and every array of a numtorch file, for tools and tests.

    Reads all it holds unchecked against any model; ``load`` checks each
    entry's header against the rebuilt model before reading it.
    """
    with Npz(path) as npz:
        meta = read_meta(npz)
        return meta, {name: npz.read(name) for name in npz.entries if name != HEADER}


def check_model_entries(model, npz, others):
    """Match the file's entries to ``model``'s parameters and buffers by their headers alone.

    Every ``model/...`` entry must be a parameter or buffer of ``model``, of
    its shape and dtype; the only other entries allowed are the header and
    ``others``. A buffer the module has not created yet (BatchNormalization's
    statistics before its first forward) may come from the file: a float32
    or float64 vector of at most ``max(parameter count, MIN_LAZY_SIZE)``
    values, all such buffers of one module of one length. Returns
    ``{key: (owner, name)}`` for the entries to read.
    """
    path = npz.path
    required, lazy = {}, {}
    for key, owner, name in named_arrays(model):
        if getattr(owner, name) is not None:
            required["model/" + key] = (owner, name)
        elif name in owner._buffers:
            lazy["model/" + key] = (owner, name)
    stored = {key for key in npz.entries if key.startswith("model/")}
    strange = sorted(set(npz.entries) - stored - {HEADER} - set(others))
    if strange:
        raise ValueError(f"{path}: unexpected entries {strange} (a numtorch file holds {HEADER}, model/... "
                         "arrays and, in a checkpoint, the optimizer/... arrays its header lists)")
    if not set(required) <= stored <= set(required) | set(lazy):
        missing, extra = sorted(set(required) - stored), sorted(stored - set(required) - set(lazy))
        raise ValueError(f"{path}: the file's arrays do not fit {describe_architecture(architecture(model))}"
                         f" (missing {missing}, unexpected {extra})")
    for key, (owner, name) in required.items():
        target, entry = getattr(owner, name), npz.entries[key]
        if entry.shape != target.shape:
            raise ValueError(f"{path}: {key[6:]} of {owner!r} has shape {entry.shape} in the file, "
                             f"the model expects {target.shape}")
        if entry.dtype != target.dtype:
            raise ValueError(f"{path}: {key[6:]} of {owner!r} is {entry.dtype} in the file, "
                             f"the model holds {target.dtype}")
    lazy = {key: lazy[key] for key in lazy if key in stored}
    check_lazy_entries(model, npz, lazy)
    return {**lazy, **required}


def check_lazy_entries(model, npz, lazy):
    """Refuse lazily created buffers (see ``check_model_entries``) that no module could have made."""
    path = npz.path
    limit = max(sum(array.size for array in flatten(model.getParameters())), MIN_LAZY_SIZE)
    lengths = {}
    for key, (owner, _) in lazy.items():
        entry = npz.entries[key]
        if entry.dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
            raise ValueError(f"{path}: {key[6:]} of {owner!r} is {entry.dtype} in the file, "
                             "expected float32 or float64")
        if len(entry.shape) != 1:
            raise ValueError(f"{path}: {key[6:]} of {owner!r} has shape {entry.shape} in the file, "
                             "expected a 1-D vector")
        if entry.shape[0] > limit:
            raise ValueError(f"{path}: {key[6:]} of {owner!r} holds {entry.shape[0]} values in the file, "
                             f"more than {limit} (the model's parameter count, or {MIN_LAZY_SIZE})")
        lengths.setdefault(id(owner), {})[key[6:]] = entry.shape[0]
    for found in lengths.values():
        if len(set(found.values())) > 1:
            raise ValueError(f"{path}: buffers of one module differ in length in the file: "
                             + ", ".join(f"{key} has length {length}" for key, length in found.items()))


def assign(model, npz, others=()):
    """Check the file's entries against ``model`` (``check_model_entries``), then copy them in."""
    for key, (owner, name) in check_model_entries(model, npz, others).items():
        value = npz.read(key)
        if getattr(owner, name) is None:
            setattr(owner, name, value)
        else:
            getattr(owner, name)[...] = value


def unread_optimizer_entries(npz, meta):
    """A checkpoint's ``optimizer/...`` entries, which loading only its model leaves unread."""
    if meta.get("kind") != "checkpoint":
        return []
    return [key for key in npz.entries if key.startswith("optimizer/")]


def rebuild(meta, npz, others=None):
    """The model of ``meta``'s architecture with the file's arrays (checked before they are read).

    ``others``: the non-model entries the file may hold (by default a
    checkpoint's optimizer entries, left unread).
    """
    classes = module_classes()
    state = get_rng_state()
    try:
        model = build(meta.get("architecture"), classes)
    except RecursionError:
        raise ValueError(f"{npz.path}: cannot rebuild the model: "
                         "its architecture is nested too deeply") from None
    except (TypeError, ValueError) as error:
        raise ValueError(f"{npz.path}: cannot rebuild the model: {error}") from None
    finally:
        set_rng_state(state)
    dtypes = {entry.dtype for key, entry in npz.entries.items() if key.startswith("model/")}
    if dtypes == {np.dtype(np.float64)}:
        model.astype(np.float64)
    assign(model, npz, unread_optimizer_entries(npz, meta) if others is None else others)
    return model


def load(path):
    """Rebuild the module saved by ``save`` (or stored in a checkpoint) at ``path``."""
    model, _ = load_with_metadata(path)
    return model


def load_with_metadata(path):
    """``(model, meta)``: the module and the file's JSON header (``input_shape``, ...)."""
    with Npz(path) as npz:
        meta = read_meta(npz)
        return rebuild(meta, npz), meta


def check_same_architecture(model, loaded, path):
    """Refuse a file whose model ``loaded`` is not ``model``'s architecture (``None`` in ours matches any)."""
    ours, theirs = architecture(model), architecture(loaded)
    if not fits(ours, theirs):
        raise ValueError(f"{path}: the file holds {describe_architecture(theirs)}, "
                         f"not this model's {describe_architecture(ours)} (or other constructor arguments)")
    ours, theirs = list(named_arrays(model)), list(named_arrays(loaded))
    if [key for key, _, _ in ours] != [key for key, _, _ in theirs]:
        raise ValueError(f"{path}: the file's arrays {[key for key, _, _ in theirs]} do not fit this model's "
                         f"{[key for key, _, _ in ours]}")
    copies = []
    for (key, owner, name), (_, source, _) in zip(ours, theirs):
        target, value = getattr(owner, name), getattr(source, name)
        if value is None:
            continue
        if target is not None and (target.shape != value.shape or target.dtype != value.dtype):
            raise ValueError(f"{path}: {key} of {owner!r} is {value.dtype} of shape {value.shape} in the "
                             f"file, the model holds {target.dtype} of shape {target.shape}")
        copies.append((owner, name, value))
    return copies


def copy_arrays(copies):
    """Copy checked arrays into their modules, in place (a buffer not created yet is set)."""
    for owner, name, value in copies:
        if getattr(owner, name) is None:
            setattr(owner, name, value)
        else:
            getattr(owner, name)[...] = value


def load_weights(model, path):
    """Copy the parameters and buffers saved at ``path`` into ``model``, which must match the file.

    The file's model is rebuilt and checked first; ``model`` changes only
    once everything fits.
    """
    if not isinstance(model, Module):
        raise TypeError(f"load_weights: expected a numtorch Module, got {type(model).__name__}")
    with Npz(path) as npz:
        loaded = rebuild(read_meta(npz), npz)
    copy_arrays(check_same_architecture(model, loaded, npz.path))
    return model
