"""Save and load a model as one ``.npz`` file, without pickle.

A model file holds two kinds of entries:

- ``__numtorch__``: JSON text — the format version, the architecture (each
  module's class name and its ``config()``; containers list their children,
  see ``numtorch.io.architecture``) and optional metadata such as the input
  shape;
- ``model/<path>.<name>``: every parameter and buffer, e.g. ``model/0.W`` for
  the weight of a Sequential's first child.

Loading trusts nothing in the file, and checks in this order, each step
before anything the next one would allocate: the zip's entry names, the JSON
header (at most 16 MiB), the architecture (only allowed classes, arguments
the constructors take, at most ``MAX_DEPTH`` deep), the arrays every module's
config declares (``Module.array_shapes``) against the entries' ``.npy``
headers and against ``max_bytes``; only then are the modules constructed
(numtorch's RNG left as it was) and the arrays read.
"""

import json
from collections import namedtuple

import numpy as np

from numtorch._checks import check_positive_int
from numtorch.io.architecture import (
    architecture,
    classes_in,
    fits,
    model_outline,
    module_classes,
    named_arrays,
    outline,
    plan,
    plan_outline,
)
from numtorch.io.archive import Npz, abridged, atomic_savez
from numtorch.module import Module
from numtorch.random import get_rng_state, set_rng_state

FORMAT = "numtorch"
VERSION = 1
HEADER = "__numtorch__"
MAX_HEADER_BYTES = 2**24  # the JSON header: 16 MiB of text (4 bytes a character) is far beyond any network
MIN_LAZY_SIZE = 2**16  # a lazily created buffer may hold max(the model's parameter count, this) values
MAX_MODEL_BYTES = 2**32  # load's default max_bytes: parameters, gradients and buffers of the loaded model
FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


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
    if HEADER not in npz.names:
        raise ValueError(f"{path}: not a numtorch file (no {HEADER} entry)")
    entry = npz.entry(HEADER)
    if entry.shape != () or entry.dtype.kind != "U" or entry.nbytes > MAX_HEADER_BYTES:
        raise ValueError(f"{path}: corrupt numtorch header (expected a text of at most {MAX_HEADER_BYTES} "
                         f"bytes, got shape {entry.shape} of {entry.dtype})")
    try:
        meta = json.loads(str(npz.read(HEADER)))
    except (json.JSONDecodeError, RecursionError) as error:
        raise ValueError(f"{path}: corrupt numtorch header ({str(error)[:200]})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ValueError(f"{path}: not a numtorch file")
    if meta.get("version") != VERSION:
        raise ValueError(f"{path}: numtorch file version {str(meta.get('version'))[:20]}, "
                         f"this numtorch reads version {VERSION}")
    return meta


def read_header(path):
    """The JSON header of the numtorch file (model or checkpoint) at ``path``; no array is read."""
    with Npz(path) as npz:
        return read_meta(npz)


def read(path):
    """``(meta, arrays)``: the JSON header and every array of a numtorch file, for tools and tests.

    Reads all it holds unchecked against any model; ``load`` checks each
    entry's header against the model before reading it.
    """
    with Npz(path) as npz:
        meta = read_meta(npz)
        return meta, {name: npz.read(name) for name in npz.names if name != HEADER}


Expected = namedtuple("Expected", "owner name shape dtype parameter")
Expected.__doc__ = """What a model holds at one entry: ``shape`` None for an array it does not create
(no bias; a buffer made at the first forward), ``dtype`` None where the file decides (float32, or
float64 when all its arrays are)."""


def held_arrays(model):
    """``{entry: Expected}`` for the arrays ``model`` holds (a constructed model)."""
    expected = {}
    for key, owner, name in named_arrays(model):
        value = getattr(owner, name)
        expected["model/" + key] = Expected(repr(owner), name, None if value is None else value.shape,
                                            None if value is None else value.dtype, name in owner._parameters)
    return expected


def planned_arrays(root):
    """``({entry: Expected}, [entry prefixes of modules that do not declare their arrays])`` of a Plan.

    Each module's arrays come from its class's ``array_shapes(**config)``,
    which checks the arguments that decide them as the constructor would.
    """
    expected, unchecked = {}, []

    def visit(node, prefix):
        shapes = node.array_shapes()
        if shapes is None:
            unchecked.append("model/" + prefix)
            return
        for name in (*node.cls._parameters, *node.cls._buffers):
            shape = shapes.get(name)
            expected["model/" + prefix + name] = Expected(
                str(node), name, None if shape is None else tuple(shape), None, name in node.cls._parameters)
        for i, child in enumerate(node.subplans()):
            visit(child, f"{prefix}{i}.")

    visit(root, "")
    return expected, unchecked


def check_entries(npz, expected, what, others=(), unchecked=()):
    """Match the file's entries with the ``expected`` arrays by names and ``.npy`` headers alone.

    Every ``model/...`` entry must be an expected array, of its shape and
    dtype (entries under an ``unchecked`` prefix aside); the only other
    entries allowed are the header and ``others``. A buffer not created yet
    (BatchNormalization's statistics before its first forward) may come from
    the file: a float32 or float64 vector of at most ``max(parameter count,
    MIN_LAZY_SIZE)`` values, all such buffers of one module of one length.
    Returns the model's dtype (float64 when all its arrays are, else float32).
    """
    path = npz.path
    names = set(npz.names)
    stored = {name for name in names if name.startswith("model/")}
    strange = names - stored - {HEADER} - set(others)
    if strange:
        raise ValueError(f"{path}: unexpected entries {abridged(strange)} (a numtorch file holds {HEADER}, "
                         "model/... arrays and, in a checkpoint, the optimizer/... arrays its header lists)")
    free = {name for name in stored if name.startswith(tuple(unchecked))} if unchecked else set()
    required = {key for key, held in expected.items() if held.shape is not None}
    lazy = {key for key, held in expected.items() if held.shape is None and not held.parameter} & stored
    missing, extra = required - stored, stored - required - lazy - free
    if missing or extra:
        raise ValueError(f"{path}: the file's arrays do not fit {what} "
                         f"(missing {abridged(missing)}, unexpected {abridged(extra)})")
    dtypes = {npz.entry(key).dtype for key in stored}
    dtype = np.dtype(np.float64) if dtypes == {np.dtype(np.float64)} else np.dtype(np.float32)
    for key in sorted(required):
        held, entry = expected[key], npz.entry(key)
        if entry.shape != held.shape:
            raise ValueError(f"{path}: {key[6:]} of {held.owner} has shape {entry.shape} in the file, "
                             f"the model expects {held.shape}")
        if entry.dtype != (held.dtype or dtype):
            raise ValueError(f"{path}: {key[6:]} of {held.owner} is {entry.dtype} in the file, "
                             f"the model holds {held.dtype or dtype}")
    parameters = sum(int(np.prod(expected[key].shape)) for key in required if expected[key].parameter)
    limit = max(parameters, MIN_LAZY_SIZE)
    lengths = {}
    for key in sorted(lazy):
        held, entry = expected[key], npz.entry(key)
        if entry.dtype not in FLOATS:
            raise ValueError(f"{path}: {key[6:]} of {held.owner} is {entry.dtype} in the file, "
                             "expected float32 or float64")
        if len(entry.shape) != 1:
            raise ValueError(f"{path}: {key[6:]} of {held.owner} has shape {entry.shape} in the file, "
                             "expected a 1-D vector")
        if entry.shape[0] > limit:
            raise ValueError(f"{path}: {key[6:]} of {held.owner} holds {entry.shape[0]} values in the file, "
                             f"more than {limit} (the model's parameter count, or {MIN_LAZY_SIZE})")
        lengths.setdefault(key[:-len(held.name)], {})[key[6:]] = entry.shape[0]
    for found in lengths.values():
        if len(set(found.values())) > 1:
            raise ValueError(f"{path}: buffers of one module differ in length in the file: "
                             + ", ".join(f"{key} has length {length}" for key, length in found.items()))
    return dtype


def check_budget(npz, expected, dtype, unchecked, max_bytes):
    """Refuse a model whose parameters, gradients and buffers would take more than ``max_bytes``."""
    if max_bytes is None:
        return
    parameters = needed = 0
    for key, held in expected.items():
        if held.shape is not None:
            count = int(np.prod(held.shape))
            parameters += count if held.parameter else 0
            needed += count * dtype.itemsize * (2 if held.parameter else 1)
        elif key in npz.names:
            needed += npz.entry(key).nbytes
    needed += sum(2 * npz.entry(key).nbytes for key in npz.names if key.startswith(tuple(unchecked))) \
        if unchecked else 0
    if needed > max_bytes:
        raise ValueError(f"{npz.path}: the model declares {parameters:,} parameters: {needed:,} bytes with "
                         f"their gradients and buffers, over max_bytes={max_bytes:,} (pass a larger "
                         "max_bytes, or None, to load it)")


def read_model(npz, meta, classes, others=(), max_bytes=MAX_MODEL_BYTES, outline_of=None):
    """The model of the file's architecture, with the file's arrays; every check before any allocation.

    ``classes``: the classes the file may name. ``others``: the non-model
    entries the file may hold (a checkpoint's optimizer arrays, left unread).
    ``outline_of``: an outline the file's class tree must equal (checked
    before any constructor runs).
    """
    path = npz.path
    try:
        root = plan(meta.get("architecture"), classes)
        if outline_of is not None and plan_outline(root) != outline_of:
            raise ValueError(f"the file holds {plan_outline(root)}, not this model's {outline_of}")
        expected, unchecked = planned_arrays(root)
    except RecursionError:
        raise ValueError(f"{path}: cannot rebuild the model: its architecture is nested too deeply") from None
    except (TypeError, ValueError) as error:
        raise ValueError(f"{path}: cannot rebuild the model: {error}") from None
    dtype = check_entries(npz, expected, plan_outline(root), others, unchecked)
    check_budget(npz, expected, dtype, unchecked, max_bytes)
    state = get_rng_state()
    try:
        model = root.build()
    except (TypeError, ValueError) as error:
        raise ValueError(f"{path}: cannot rebuild the model: {error}") from None
    finally:
        set_rng_state(state)
    if dtype == np.dtype(np.float64):
        model.astype(np.float64)
    check_entries(npz, held_arrays(model), outline(architecture(model)), others)
    for key, owner, name in named_arrays(model):
        if "model/" + key in npz.names:
            value = npz.read("model/" + key)
            if getattr(owner, name) is None:
                setattr(owner, name, value)
            else:
                getattr(owner, name)[...] = value
    return model


def unread_optimizer_entries(npz, meta):
    """A checkpoint's ``optimizer/...`` entries, which loading only its model leaves unread."""
    if meta.get("kind") != "checkpoint":
        return []
    return [name for name in npz.names if name.startswith("optimizer/")]


def load(path, custom=(), max_bytes=MAX_MODEL_BYTES):
    """Rebuild the module saved by ``save`` (or stored in a checkpoint) at ``path``.

    Only numtorch's own layers are built from a file, unless ``custom`` lists
    your classes (``load(path, custom=[MyLayer])``): a file names a class,
    loading runs its constructor. ``max_bytes``: the most the model's
    parameters, gradients and buffers may take (4 GiB by default, ``None``
    for no limit), checked from the file's headers before anything is built.
    """
    model, _ = load_with_metadata(path, custom, max_bytes)
    return model


def load_with_metadata(path, custom=(), max_bytes=MAX_MODEL_BYTES):
    """``(model, meta)``: the module and the file's JSON header (``input_shape``, ...); see ``load``."""
    classes = module_classes(custom)
    with Npz(path) as npz:
        meta = read_meta(npz)
        return read_model(npz, meta, classes, unread_optimizer_entries(npz, meta), max_bytes), meta


def matching_arrays(model, loaded, path):
    """``[(owner, name, value)]``: ``loaded``'s arrays for ``model``, unless the architectures differ.

    ``None`` in ``model``'s configs (not resolved yet) matches any value.
    """
    ours, theirs = architecture(model), architecture(loaded)
    if not fits(ours, theirs):
        raise ValueError(f"{path}: the file holds {outline(theirs)}, "
                         f"not this model's {outline(ours)} (or other constructor arguments)")
    copies = []
    for (key, owner, name), (_, source, _) in zip(named_arrays(model), named_arrays(loaded)):
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


def read_for(model, npz, meta, others, max_bytes):
    """The file's model checked against ``model``: its arrays to copy, nothing changed yet.

    The file may name only the classes ``model`` is made of, in the same tree,
    which is checked before any constructor runs.
    """
    classes = module_classes(sorted(classes_in(model), key=lambda cls: cls.__qualname__))
    loaded = read_model(npz, meta, classes, others, max_bytes, outline_of=model_outline(model))
    return matching_arrays(model, loaded, npz.path)


def load_weights(model, path, max_bytes=MAX_MODEL_BYTES):
    """Copy the parameters and buffers saved at ``path`` into ``model``, which must match the file.

    The file's model is rebuilt and checked first (it may name only the
    classes ``model`` is made of); ``model`` changes only once everything fits.
    """
    if not isinstance(model, Module):
        raise TypeError(f"load_weights: expected a numtorch Module, got {type(model).__name__}")
    with Npz(path) as npz:
        meta = read_meta(npz)
        copies = read_for(model, npz, meta, unread_optimizer_entries(npz, meta), max_bytes)
    copy_arrays(copies)
    return model
