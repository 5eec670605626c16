"""A model's architecture as JSON, read from ``config()``, and the model rebuilt from it.

The architecture of a module is ``{"class": name, "args": config}``; a
container (a module with a ``modules`` list and an ``add`` method) adds
``"children"``, the architectures of its children in order. A module is
rebuilt as ``cls(**args)``, then, for a container, ``add(child)`` for each
child (Torch7's ``nn.Concat(dim)`` then ``:add(m)``).

Config values are JSON with three markers that keep Python's types: a tuple
is ``{"__tuple__": [...]}``, a dict ``{"__dict__": {...}}`` and a module
given as an argument ``{"__module__": architecture}`` (its arrays are saved
under its index among the module's children, as a container's children's).
"""

import inspect

import numpy as np

from numtorch.module import Module


def is_container(module):
    """A module that holds its children in a ``modules`` list and takes more through ``add``."""
    return isinstance(getattr(module, "modules", None), list) and callable(getattr(module, "add", None))


def constructor(cls):
    """The signature ``cls(...)`` is called with."""
    return inspect.signature(cls)


def module_config(module):
    """``module.config()``, checked to rebuild ``module``: a dict of keyword arguments its constructor takes.

    A class whose constructor takes arguments must say which ones rebuild it:
    with the inherited ``Module.config`` (which returns ``{}``) and a
    constructor that takes arguments (a container's ``*modules`` aside), this
    raises a ``TypeError`` asking for ``config()``.
    """
    cls = type(module)
    signature = constructor(cls)
    config = module.config()
    if not isinstance(config, dict) or not all(isinstance(key, str) for key in config):
        raise TypeError(f"save: {cls.__name__}.config() must return a dict of keyword arguments, "
                        f"got {type(config).__name__}")
    takes = [p.name for p in signature.parameters.values()
             if not (is_container(module) and p.kind is inspect.Parameter.VAR_POSITIONAL)]
    if cls.config is Module.config and takes:
        example = "{" + ", ".join(f"{name!r}: self.{name}" for name in takes) + "}"
        raise TypeError(f"save: {cls.__name__}'s constructor takes ({', '.join(takes)}) but the class does "
                        f"not define config(): define {cls.__name__}.config() returning the keyword "
                        f"arguments that rebuild the module, e.g. {example}")
    try:
        signature.bind(**config)
    except TypeError as error:
        raise TypeError(f"save: {cls.__name__}.config() returned {sorted(config)}, which does not fit its "
                        f"constructor {cls.__name__}{signature} ({error})") from None
    return config


def encode(owner, name, value):
    """A config value as JSON; modules become nested architectures."""
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
                    "(config() values must be numbers, strings, booleans, None, lists, tuples, dicts "
                    "or modules)")


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
    """``{"class": name, "args": config}``, plus ``"children"`` for a container."""
    config = module_config(module)
    spec = {"class": type(module).__name__,
            "args": {key: encode(module, key, value) for key, value in config.items()}}
    if is_container(module):
        spec["children"] = [architecture(child) for child in module.modules]
    return spec


def children(module):
    """The sub-modules whose arrays are saved with ``module``, in a fixed order.

    A container's children; for any other module, the modules among its
    config values (inside lists, tuples and dicts too), in config order.
    """
    if is_container(module):
        return list(module.modules)
    found = []

    def collect(value):
        if isinstance(value, Module):
            found.append(value)
        elif isinstance(value, (list, tuple)):
            for item in value:
                collect(item)
        elif isinstance(value, dict):
            for item in value.values():
                collect(item)

    collect(list(module.config().values()))
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
    """A fresh module from an architecture: ``cls(**args)``, then ``add(child)`` for a container."""
    if not isinstance(spec, dict) or not isinstance(spec.get("class"), str):
        raise ValueError(f"load: malformed architecture entry {spec!r}")
    cls = classes.get(spec["class"])
    if cls is None:
        raise ValueError(f"load: unknown layer {spec['class']!r} (not a numtorch module; "
                         "import the module that defines it before loading)")
    args = spec.get("args", {})
    if not isinstance(args, dict):
        raise ValueError(f"load: malformed arguments of {spec['class']}: {args!r}")
    parameters = constructor(cls).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
    for name in args:
        if not takes_any and (name not in parameters
                              or parameters[name].kind in (inspect.Parameter.VAR_POSITIONAL,
                                                           inspect.Parameter.POSITIONAL_ONLY)):
            raise ValueError(f"load: {spec['class']} takes no argument {name!r}")
    module = cls(**{name: decode(value, classes) for name, value in args.items()})
    if "children" in spec:
        if not is_container(module) or not isinstance(spec["children"], list):
            raise ValueError(f"load: {spec['class']} is not a container (a module with a modules list "
                             "and add), but the file gives it children")
        for child in spec["children"]:
            module.add(build(child, classes))
    return module


def describe_architecture(spec):
    """A one-line outline of an architecture: ``Sequential(Linear, ReLU, Linear)``."""
    if "children" in spec:
        return f"{spec['class']}({', '.join(describe_architecture(child) for child in spec['children'])})"
    return spec["class"]


def fits(ours, theirs):
    """Whether architecture ``theirs`` fits ``ours``, where ``None`` in ours is not yet resolved."""
    if isinstance(ours, dict) and isinstance(theirs, dict):
        return ours.keys() == theirs.keys() and all(fits(ours[k], theirs[k]) for k in ours)
    if isinstance(ours, list) and isinstance(theirs, list):
        return len(ours) == len(theirs) and all(fits(a, b) for a, b in zip(ours, theirs))
    return ours is None or ours == theirs
