"""Save and load models and training checkpoints as one ``.npz`` file, without pickle.

A model file holds two kinds of entries:

- ``__numtorch__``: JSON text — the format version, the architecture (each
  module's class name and the constructor arguments it was built with, which
  ``Module.__new__`` records; containers list their children) and optional
  metadata such as the input shape;
- ``model/<path>.<name>``: every parameter and buffer, e.g. ``model/0.W`` for
  the weight of a Sequential's first child.

``load`` opens the file with ``allow_pickle=False`` and rebuilds the modules
from class names it looks up among the Module subclasses already imported, so
opening a file runs no code from it. Writes go to a temporary file in the
target's directory, renamed over the target only once complete.

A checkpoint adds the optimizer's state (``optimizer/<buffer>/<i>`` arrays,
its hyper-parameters and step in the JSON), the epoch, numtorch's RNG state
and any other JSON-able state (the batch iterator's generator, the history),
so a resumed run ends with the same weights as an uninterrupted one.
"""

import inspect
import json
import math
import os
import secrets
import zipfile

import numpy as np

from numtorch._checks import check_int, check_positive_int
from numtorch.module import Module, flatten
from numtorch.random import get_rng_state, set_rng_state

FORMAT = "numtorch"
VERSION = 1
HEADER = "__numtorch__"
MAX_HEADER_BYTES = 2**24  # the JSON header: 16 MiB of text (4 bytes a character) is far beyond any network
MIN_LAZY_SIZE = 2**16  # a lazily created buffer may hold max(the model's parameter count, this) values


def constructor_signature(cls):
    """The signature of ``cls.__init__`` without ``self`` (``Module.__new__`` takes anything)."""
    signature = inspect.signature(cls.__init__)
    return signature.replace(parameters=list(signature.parameters.values())[1:])


def is_container(module):
    """A module whose constructor takes only ``*modules`` and keeps them in ``.modules`` (Sequential)."""
    parameters = list(constructor_signature(type(module)).parameters.values())
    return (isinstance(getattr(module, "modules", None), list) and len(parameters) == 1
            and parameters[0].kind is inspect.Parameter.VAR_POSITIONAL)


def encode(owner, name, value):
    """A constructor argument as JSON; modules become nested architecture specs."""
    if isinstance(value, Module):
        return {"__module__": architecture(value)}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (np.integer, np.floating, np.bool_)):
        return value.item()
    if isinstance(value, (list, tuple)):
        items = [encode(owner, name, item) for item in value]
        return {"__tuple__": items} if isinstance(value, tuple) else items
    if isinstance(value, dict) and all(isinstance(key, str) for key in value):
        return {"__dict__": {key: encode(owner, f"{name}[{key!r}]", item) for key, item in value.items()}}
    raise TypeError(f"save: cannot store argument {name!r} of {owner!r}: a {type(value).__name__} "
                    "(arguments must be numbers, strings, booleans, None, lists, tuples, dicts or modules)")


def decode(value, classes):
    if isinstance(value, list):
        return [decode(item, classes) for item in value]
    if isinstance(value, dict):
        if "__module__" in value:
            return build(value["__module__"], classes)
        if "__tuple__" in value:
            return tuple(decode(item, classes) for item in value["__tuple__"])
        if "__dict__" in value:
            return {key: decode(item, classes) for key, item in value["__dict__"].items()}
        raise ValueError(f"load: unexpected argument encoding {sorted(value)}")
    return value


def architecture(module):
    """``{"class": name, "args": {argument: value}}`` or, for containers, ``{"class", "children"}``.

    Every constructor argument is recorded, defaults included. An argument
    given as ``None`` that the module has since resolved into an attribute
    of the same name (``BatchNormalization(n_features=None)`` after its first
    forward, ``Conv2d(padding=None)``) is recorded as resolved, so the
    rebuilt module has room for the saved arrays.
    """
    name = type(module).__name__
    if is_container(module):
        return {"class": name, "children": [architecture(child) for child in module.modules]}
    args, kwargs = getattr(module, "_init_args", ((), {}))
    signature = constructor_signature(type(module))
    try:
        bound = signature.bind(*args, **kwargs)
    except TypeError as error:
        raise TypeError(f"save: the recorded arguments of {module!r} do not fit its constructor "
                        f"({error})") from None
    bound.apply_defaults()
    recorded = {}
    for key, value in bound.arguments.items():
        if value is None and getattr(module, key, None) is not None:
            value = resolved(module, key, getattr(module, key))
        recorded[key] = encode(module, key, value)
    return {"class": name, "args": recorded}


def resolved(module, key, value):
    """``value`` if it can be stored as an argument, else ``None`` (the argument as given)."""
    try:
        encode(module, key, value)
    except TypeError:
        return None
    return value


def children(module):
    """The sub-modules whose arrays are saved with ``module``, in a fixed order."""
    if is_container(module):
        return list(module.modules)
    args, kwargs = getattr(module, "_init_args", ((), {}))
    found = []

    def collect(value):
        if isinstance(value, Module):
            found.append(value)
        elif isinstance(value, (list, tuple)):
            for item in value:
                collect(item)

    collect(list(args) + list(kwargs.values()))
    return found


def named_arrays(module, prefix=""):
    """``(key, owner, attribute)`` for every parameter and buffer, depth first."""
    for name in (*module._parameters, *module._buffers):
        yield prefix + name, module, name
    for i, child in enumerate(children(module)):
        yield from named_arrays(child, f"{prefix}{i}.")


def module_classes():
    """Every imported Module subclass by name; numtorch's own win over a user's of the same name."""
    import numtorch  # noqa: F401  (registers the library's layers)

    classes, pending = {}, [Module]
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        previous = classes.get(cls.__name__)
        if previous is None or (cls.__module__.startswith("numtorch.")
                                and not previous.__module__.startswith("numtorch.")):
            classes[cls.__name__] = cls
    return classes


def build(spec, classes):
    """A fresh module from an architecture spec."""
    if not isinstance(spec, dict) or not isinstance(spec.get("class"), str):
        raise ValueError(f"load: malformed architecture entry {spec!r}")
    cls = classes.get(spec["class"])
    if cls is None:
        raise ValueError(f"load: unknown layer {spec['class']!r} (not a numtorch module; "
                         "import the module that defines it before loading)")
    if "children" in spec:
        return cls(*(build(child, classes) for child in spec["children"]))
    signature = constructor_signature(cls)
    args, kwargs = [], {}
    for name, value in spec.get("args", {}).items():
        if name not in signature.parameters:
            raise ValueError(f"load: {spec['class']} takes no argument {name!r}")
        value = decode(value, classes)
        kind = signature.parameters[name].kind
        if kind is inspect.Parameter.VAR_POSITIONAL:
            args.extend(value)
        elif kind is inspect.Parameter.VAR_KEYWORD:
            kwargs.update(value)
        elif kind is inspect.Parameter.KEYWORD_ONLY:
            kwargs[name] = value
        else:
            args.append(value)
    return cls(*args, **kwargs)


def atomic_savez(path, arrays):
    """``np.savez`` to a temporary file next to ``path``, then rename it over ``path``.

    A crash or error mid-write leaves any previous file at ``path`` intact; the
    file and then its folder are fsynced, so the new file also survives a power cut.
    """
    path = os.fspath(path)
    directory, name = os.path.split(os.path.abspath(path))
    temporary = os.path.join(directory, f".{name}.{secrets.token_hex(6)}.tmp")
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"{path}: no such directory {directory}")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(descriptor, "wb") as file:
            np.savez(file, **arrays)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise
    sync_directory(directory)


def sync_directory(directory):
    """fsync a folder, making a rename in it durable (POSIX; elsewhere there is nothing to do)."""
    if not hasattr(os, "O_DIRECTORY"):
        return
    descriptor = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def model_arrays(model):
    arrays = {}
    for key, owner, name in named_arrays(model):
        value = getattr(owner, name)
        if value is not None:
            arrays["model/" + key] = value
    return arrays


def header(kind, model, **extra):
    return {"format": FORMAT, "version": VERSION, "kind": kind, "architecture": architecture(model), **extra}


def save(model, path, input_shape=None):
    """Write ``model`` (architecture, parameters, buffers) to ``path`` as one ``.npz``.

    ``input_shape``: the shape of one sample (e.g. ``(64,)``), kept so
    ``summary`` can show output shapes and tools can reshape data to fit.
    """
    if not isinstance(model, Module):
        raise TypeError(f"save: expected a numtorch Module, got {type(model).__name__}")
    if input_shape is not None:
        if not isinstance(input_shape, (tuple, list)):
            raise TypeError(
                f"save: expected input_shape as a tuple of ints, got {type(input_shape).__name__}")
        input_shape = [check_positive_int("save", size, "every input_shape size") for size in input_shape]
    meta = header("model", model, input_shape=input_shape)
    atomic_savez(path, {HEADER: np.array(json.dumps(meta)), **model_arrays(model)})


class Entry:
    """One ``.npy`` member of an ``.npz``: its zip record and the shape and dtype its header declares."""

    def __init__(self, info, shape, dtype):
        self.info, self.shape, self.dtype = info, shape, dtype

    @property
    def nbytes(self):
        return math.prod(self.shape) * self.dtype.itemsize


def entry_header(archive, info):
    """The :class:`Entry` of member ``info``, reading only its ``.npy`` header.

    Refuses an entry that is not a plain ``.npy``, holds Python objects or
    declares more (or less) data than the zip says it holds.
    """
    with archive.open(info) as stream:
        version = np.lib.format.read_magic(stream)
        if version not in ((1, 0), (2, 0)):
            raise ValueError(f"entry {info.filename!r}: .npy format version {version}")
        read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                       else np.lib.format.read_array_header_2_0)
        shape, _, dtype = read_header(stream)
        held = info.file_size - stream.tell()
    if dtype.hasobject:
        raise ValueError(f"entry {info.filename!r} holds Python objects (a pickle), "
                         "which numtorch never loads")
    entry = Entry(info, shape, dtype)
    if entry.nbytes != held:
        raise ValueError(f"entry {info.filename!r} declares shape {shape} of {dtype} "
                         f"({entry.nbytes} bytes) but holds {held} bytes")
    return entry


class corrupt:
    """Context: turn what a broken zip or ``.npy`` raises into ``ValueError`` naming ``path``."""

    # zipfile raises NotImplementedError for an unknown compression method and
    # RuntimeError for an entry flagged as encrypted.
    ERRORS = (OSError, EOFError, ValueError, zipfile.BadZipFile, NotImplementedError, RuntimeError)

    def __init__(self, path):
        self.path = path

    def __enter__(self):
        return self

    def __exit__(self, kind, error, traceback):
        if kind is FileNotFoundError:
            raise FileNotFoundError(f"{self.path}: no such file") from None
        if kind is not None and issubclass(kind, self.ERRORS):
            raise ValueError(f"{self.path}: not a readable .npz file, "
                             f"truncated or corrupt ({error})") from None
        return False


class Npz:
    """An open ``.npz``: ``entries`` maps each array's name to its :class:`Entry`, read from headers only.

    No array data is read until ``read(name)``, so a caller checks the
    declared shapes and dtypes first and refuses a hostile file before it
    allocates anything (a few kilobytes of zeros can declare gigabytes).
    """

    def __init__(self, path):
        self.path = os.fspath(path)
        with corrupt(self.path):
            with open(self.path, "rb") as file:
                start = file.read(6)
            if start == b"\x93NUMPY":
                raise ValueError("a single .npy array, not an .npz archive")
            if not start.startswith(b"PK"):
                raise ValueError(f"expected a zip archive (starting with b'PK'), got {start!r}")
            self.zip = zipfile.ZipFile(self.path)
            try:
                self.entries = {}
                for info in self.zip.infolist():
                    name = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
                    if name in self.entries:
                        raise ValueError(f"entry {name!r} appears twice")
                    self.entries[name] = entry_header(self.zip, info)
            except BaseException:
                self.zip.close()
                raise

    def __enter__(self):
        return self

    def __exit__(self, *exception):
        self.zip.close()

    def read(self, name):
        """The array ``name`` (``allow_pickle=False``), allocating only what its header declared."""
        with corrupt(self.path), self.zip.open(self.entries[name].info) as stream:
            return np.lib.format.read_array(stream, allow_pickle=False)


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


def read(path):
    """``(meta, arrays)``: the JSON header and every array of a numtorch file, for tools and tests.

    Reads all it holds unchecked against any model; ``load`` checks each
    entry's header against the rebuilt model before reading it.
    """
    with Npz(path) as npz:
        meta = read_meta(npz)
        return meta, {name: npz.read(name) for name in npz.entries if name != HEADER}


def describe_architecture(spec):
    if "children" in spec:
        return f"{spec['class']}({', '.join(describe_architecture(child) for child in spec['children'])})"
    return spec["class"]


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


def rebuild(meta, npz):
    """The model of ``meta``'s architecture with the file's arrays (checked before they are read)."""
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
    assign(model, npz, unread_optimizer_entries(npz, meta))
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


def fits(ours, theirs):
    """Whether architecture ``theirs`` (a file's) fits ``ours``, where ``None`` is not yet resolved."""
    if isinstance(ours, dict) and isinstance(theirs, dict):
        return ours.keys() == theirs.keys() and all(fits(ours[k], theirs[k]) for k in ours)
    if isinstance(ours, list) and isinstance(theirs, list):
        return len(ours) == len(theirs) and all(fits(a, b) for a, b in zip(ours, theirs))
    return ours is None or ours == theirs


def resolve_lazy(module, spec, classes):
    """Set the arguments ``module`` left as ``None`` and the file resolved (see ``architecture``)."""
    if "children" in spec:
        for child, child_spec in zip(module.modules, spec["children"]):
            resolve_lazy(child, child_spec, classes)
        return
    args = architecture(module)["args"]
    for key, value in spec["args"].items():
        if args.get(key) is None and value is not None and hasattr(module, key):
            setattr(module, key, decode(value, classes))


def check_same_architecture(model, meta, path):
    """Refuse a file of another architecture; then resolve ``model``'s lazy arguments from it."""
    ours, theirs = architecture(model), meta["architecture"]
    if not fits(ours, theirs):
        raise ValueError(f"{path}: the file holds {describe_architecture(theirs)}, "
                         f"not this model's {describe_architecture(ours)} (or other constructor arguments)")
    resolve_lazy(model, theirs, module_classes())


def load_weights(model, path):
    """Copy the parameters and buffers saved at ``path`` into ``model``, which must match the file."""
    if not isinstance(model, Module):
        raise TypeError(f"load_weights: expected a numtorch Module, got {type(model).__name__}")
    with Npz(path) as npz:
        meta = read_meta(npz)
        check_same_architecture(model, meta, npz.path)
        assign(model, npz, unread_optimizer_entries(npz, meta))
    return model


def save_checkpoint(path, model, optimizer, epoch, **state):
    """Write model, optimizer state, ``epoch``, numtorch's RNG state and ``state`` (JSON-able).

    ``state`` holds whatever else a run needs to continue exactly: the batch
    iterator's ``state_dict()``, a schedule's, the history so far.
    """
    if not isinstance(model, Module):
        raise TypeError(f"save_checkpoint: expected a numtorch Module, got {type(model).__name__}")
    if not callable(getattr(optimizer, "state_dict", None)):
        raise TypeError(f"save_checkpoint: expected a numtorch Optimizer, got {type(optimizer).__name__}")
    epoch = check_int("save_checkpoint", epoch, "epoch", low=0)
    optimizer_state = optimizer.state_dict()
    buffers = optimizer_state.pop("buffers")
    arrays = {HEADER: None, **model_arrays(model)}
    for name, values in buffers.items():
        for i, array in enumerate(values):
            arrays[f"optimizer/{name}/{i}"] = array
    meta = header("checkpoint", model, epoch=int(epoch), rng=get_rng_state(), optimizer=optimizer_state,
                  optimizer_buffers={name: len(values) for name, values in buffers.items()}, state=state)
    try:
        arrays[HEADER] = np.array(json.dumps(meta))
    except TypeError as error:
        raise TypeError(f"save_checkpoint: state must be JSON-serializable ({error})") from None
    atomic_savez(path, arrays)


def optimizer_entries(model, npz, meta):
    """``{buffer: [entry names]}`` of a checkpoint, checked by header against ``model``'s parameters.

    The optimizer keeps one array per parameter in each buffer, of that
    parameter's shape; an entry declaring anything else is refused unread.
    """
    path, params = npz.path, flatten(model.getParameters())
    counts = meta.get("optimizer_buffers")
    if not isinstance(counts, dict) or not all(type(count) is int for count in counts.values()):
        raise ValueError(f"{path}: corrupt checkpoint header (optimizer_buffers)")
    names = {}
    for buffer, count in counts.items():
        if count != len(params):
            raise ValueError(f"{path}: optimizer buffer {buffer!r} has {count} arrays "
                             f"for {len(params)} parameters")
        names[buffer] = [f"optimizer/{buffer}/{i}" for i in range(count)]
        for key, param in zip(names[buffer], params):
            entry = npz.entries.get(key)
            if entry is None:
                raise ValueError(f"{path}: optimizer array {key!r} missing from the checkpoint")
            if entry.shape != param.shape or entry.dtype.kind != "f":
                raise ValueError(f"{path}: optimizer array {key!r} is {entry.dtype} of shape {entry.shape} "
                                 f"in the file, its parameter {param.dtype} of shape {param.shape}")
    return names


def load_checkpoint(path, model, optimizer):
    """Restore ``model``'s weights, ``optimizer``'s state and the RNG from a checkpoint.

    Returns ``(epoch, state)``: the epoch the checkpoint was written after and the
    extra state given to ``save_checkpoint``. Every entry's header is checked
    against ``model`` before any array is read.
    """
    with Npz(path) as npz:
        meta = read_meta(npz)
        if meta.get("kind") != "checkpoint":
            raise ValueError(f"{npz.path}: a saved model, not a checkpoint")
        check_same_architecture(model, meta, npz.path)
        names = optimizer_entries(model, npz, meta)
        assign(model, npz, [key for keys in names.values() for key in keys])
        optimizer_state = dict(meta["optimizer"])
        optimizer_state["buffers"] = {buffer: [npz.read(key) for key in keys]
                                      for buffer, keys in names.items()}
    optimizer.load_state_dict(optimizer_state)
    set_rng_state(meta["rng"])
    return meta["epoch"], meta["state"]
