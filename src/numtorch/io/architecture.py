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

Rebuilding from a file happens in two steps. ``plan`` reads the JSON into a
:class:`Plan` without running any constructor: it accepts only the classes it
is allowed (numtorch's own concrete layers, plus the ones a caller names),
arguments the constructor takes, and at most ``MAX_DEPTH`` levels of nesting.
The caller then checks the arrays every module's config declares
(``Module.array_shapes``) against the file, and only then ``Plan.build()``
runs the constructors.
"""

import inspect

import numpy as np

from numtorch.module import Module

MAX_DEPTH = 64  # modules (or config values) nested in one another; a Torch7-style ResNet needs under 10


def is_container(module):
    """A module that holds its children in a ``modules`` list and takes more through ``add``."""
    return isinstance(getattr(module, "modules", None), list) and callable(getattr(module, "add", None))


def module_config(module):
    """``module.config()``, checked to rebuild ``module``: a dict of keyword arguments its constructor takes.

    A class whose constructor takes arguments must say which ones rebuild it:
    with the inherited ``Module.config`` (which returns ``{}``) and a
    constructor that takes arguments (a container's ``*modules`` aside), this
    raises a ``TypeError`` asking for ``config()``.
    """
    cls = type(module)
    signature = inspect.signature(cls)
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


def encode(owner, name, value, depth):
    """A config value as JSON; modules become nested architectures."""
    if depth > MAX_DEPTH:
        raise ValueError(f"save: {owner!r} is nested more than {MAX_DEPTH} levels deep, "
                         "which load refuses (numtorch.io.architecture.MAX_DEPTH)")
    if isinstance(value, Module):
        return {"__module__": describe(value, depth + 1)}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (np.integer, np.floating, np.bool_)):
        return value.item()
    if isinstance(value, (list, tuple)):
        items = [encode(owner, name, item, depth + 1) for item in value]
        return {"__tuple__": items} if isinstance(value, tuple) else items
    if isinstance(value, dict) and all(isinstance(key, str) for key in value):
        return {"__dict__": {key: encode(owner, f"{name}[{key!r}]", item, depth + 1)
                             for key, item in value.items()}}
    raise TypeError(f"save: cannot store argument {name!r} of {owner!r}: a {type(value).__name__} "
                    "(config() values must be numbers, strings, booleans, None, lists, tuples, dicts "
                    "or modules)")


def describe(module, depth):
    if depth > MAX_DEPTH:
        raise ValueError(f"save: the model is nested more than {MAX_DEPTH} levels deep, "
                         "which load refuses (numtorch.io.architecture.MAX_DEPTH)")
    config = module_config(module)
    spec = {"class": type(module).__name__,
            "args": {key: encode(module, key, value, depth) for key, value in config.items()}}
    if is_container(module):
        spec["children"] = [describe(child, depth + 1) for child in module.modules]
    return spec


def architecture(module):
    """``{"class": name, "args": config}``, plus ``"children"`` for a container."""
    return describe(module, 1)


def children(module):
    """The sub-modules whose arrays are saved with ``module``, in a fixed order.

    A container's children; for any other module, the modules among its
    config values (inside lists, tuples and dicts too), in config order.
    """
    if is_container(module):
        return list(module.modules)
    return [value for value in walk(list(module.config().values()), Module)]


def walk(value, kind):
    """The items of type ``kind`` inside ``value``'s lists, tuples and dict values, in order."""
    if isinstance(value, kind):
        yield value
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from walk(item, kind)
    elif isinstance(value, dict):
        for item in value.values():
            yield from walk(item, kind)


def named_arrays(module, prefix=""):
    """``(key, owner, attribute)`` for every parameter and buffer, depth first."""
    for name in (*module._parameters, *module._buffers):
        yield prefix + name, module, name
    for i, child in enumerate(children(module)):
        yield from named_arrays(child, f"{prefix}{i}.")


def buildable(cls):
    """A concrete module class: one with its own forward (``Module`` and ``Container`` have none)."""
    return (isinstance(cls, type) and issubclass(cls, Module) and not cls.__name__.startswith("_")
            and cls.updateOutput is not Module.updateOutput)


def module_classes(custom=()):
    """The classes a file may name: numtorch's own concrete modules, plus ``custom`` (by class name).

    A user's class is never built from a file unless the caller names it:
    a file chooses only among classes someone chose to trust.
    """
    import numtorch  # noqa: F401  (imports every layer of the library)

    classes, pending = {}, [Module]
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        if cls.__module__.split(".")[0] == "numtorch" and buildable(cls):
            classes[cls.__name__] = cls
    own = dict(classes)
    if isinstance(custom, type) or not isinstance(custom, (list, tuple, set, frozenset)):
        raise TypeError(f"load: expected custom as a list of Module classes, got {type(custom).__name__}")
    for cls in custom:
        if not (isinstance(cls, type) and issubclass(cls, Module)):
            raise TypeError(f"load: expected custom as a list of Module classes, got {cls!r}")
        if own.get(cls.__name__, cls) is not cls:
            raise ValueError(f"load: custom class {cls.__module__}.{cls.__name__} has the name of numtorch's "
                             f"{cls.__name__}; a file names classes by name alone, so rename it")
        if classes.get(cls.__name__, cls) is not cls:
            raise ValueError(f"load: two custom classes are named {cls.__name__}")
        classes[cls.__name__] = cls
    return classes


def classes_in(model):
    """The classes of ``model`` and of every module inside it."""
    found, pending = set(), [model]
    while pending:
        module = pending.pop()
        found.add(type(module))
        pending.extend(children(module))
    return found


class Plan:
    """A module to build, read from a file: class, arguments and children, no constructor run yet.

    ``args`` holds the decoded arguments, a module-valued one as a nested
    Plan; ``children`` the Plans of a container's children.
    """

    def __init__(self, cls, args, children):
        self.cls, self.args, self.children = cls, args, children

    def subplans(self):
        """The Plans whose arrays are saved under this module: as ``children(module)``."""
        if self.children is not None:
            return self.children
        return list(walk(list(self.args.values()), Plan))

    def build(self):
        module = self.cls(**{name: built(value) for name, value in self.args.items()})
        if self.children is not None:
            if not is_container(module):
                raise ValueError(f"{self.cls.__name__} is not a container (a module with a modules list "
                                 "and add), but the file gives it children")
            for child in self.children:
                module.add(child.build())
        return module

    def array_shapes(self):
        """What ``cls.array_shapes(**args)`` declares (``None``: the class does not say)."""
        return self.cls.array_shapes(**self.args)

    def __str__(self):
        """``Linear(n_in=6, n_out=5, bias=True)``: the class and its arguments as the file gives them."""
        args = ", ".join(f"{name}={'...' if isinstance(value, Plan) else repr(value)}"
                         for name, value in self.args.items())
        return f"{self.cls.__name__}({args})"


def built(value):
    """A decoded argument with its Plans built."""
    if isinstance(value, Plan):
        return value.build()
    if isinstance(value, list):
        return [built(item) for item in value]
    if isinstance(value, tuple):
        return tuple(built(item) for item in value)
    if isinstance(value, dict):
        return {key: built(item) for key, item in value.items()}
    return value


def plan(spec, classes, depth=1):
    """The :class:`Plan` of architecture ``spec``, checked without running any constructor."""
    if depth > MAX_DEPTH:
        raise ValueError(f"the architecture is nested more than {MAX_DEPTH} levels deep "
                         "(numtorch.io.architecture.MAX_DEPTH)")
    if not isinstance(spec, dict) or not isinstance(spec.get("class"), str):
        raise ValueError(f"malformed architecture entry {shorten(spec)}")
    name = spec["class"]
    cls = classes.get(name)
    if cls is None:
        raise ValueError(f"unknown layer {shorten(name)} (not one of numtorch's layers; a layer of your own "
                         "is loaded with load(path, custom=[YourLayer]), or numtorch evaluate/summary "
                         "--custom FILE.py)")
    args = spec.get("args", {})
    if not isinstance(args, dict):
        raise ValueError(f"malformed arguments of {name}: {shorten(args)}")
    signature = inspect.signature(cls)
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in signature.parameters.values())
    for key in args:
        parameter = signature.parameters.get(key)
        if not takes_any and (parameter is None or parameter.kind in (inspect.Parameter.VAR_POSITIONAL,
                                                                      inspect.Parameter.POSITIONAL_ONLY)):
            raise ValueError(f"{name} takes no argument {shorten(key)}")
    decoded = {key: decode(value, classes, depth + 1) for key, value in args.items()}
    try:
        signature.bind(**decoded)
    except TypeError as error:
        raise ValueError(f"{name}{signature}: {error}") from None
    children = None
    if "children" in spec:
        if not callable(getattr(cls, "add", None)) or not isinstance(spec["children"], list):
            raise ValueError(f"{name} is not a container (a module with a modules list and add), "
                             "but the file gives it children")
        children = [plan(child, classes, depth + 1) for child in spec["children"]]
    return Plan(cls, decoded, children)


def decode(value, classes, depth):
    if depth > MAX_DEPTH:
        raise ValueError(f"an argument is nested more than {MAX_DEPTH} levels deep "
                         "(numtorch.io.architecture.MAX_DEPTH)")
    if isinstance(value, list):
        return [decode(item, classes, depth + 1) for item in value]
    if isinstance(value, dict):
        if value.keys() == {"__module__"}:
            return plan(value["__module__"], classes, depth + 1)
        if value.keys() == {"__tuple__"} and isinstance(value["__tuple__"], list):
            return tuple(decode(item, classes, depth + 1) for item in value["__tuple__"])
        if value.keys() == {"__dict__"} and isinstance(value["__dict__"], dict):
            return {key: decode(item, classes, depth + 1) for key, item in value["__dict__"].items()}
        raise ValueError(f"unexpected argument encoding {shorten(sorted(value))}")
    return value


def shorten(value, limit=200):
    """``repr(value)``, cut to ``limit`` characters: a hostile file cannot make a message huge."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text):,} characters)"


def outline(spec):
    """A one-line outline of an architecture: ``Sequential(Linear, ReLU, Linear)``."""
    if "children" in spec:
        return f"{spec['class']}({', '.join(outline(child) for child in spec['children'])})"
    return spec["class"]


def plan_outline(node):
    """A Plan's class tree, module-valued arguments included: ``Sequential(Linear, Holder(ReLU))``."""
    inner = ", ".join(plan_outline(child) for child in node.subplans())
    return f"{node.cls.__name__}({inner})" if node.children is not None or inner else node.cls.__name__


def model_outline(module):
    """A module's class tree, as ``plan_outline`` writes a Plan's."""
    inner = ", ".join(model_outline(child) for child in children(module))
    return f"{type(module).__name__}({inner})" if is_container(module) or inner else type(module).__name__


def fits(ours, theirs):
    """Whether architecture ``theirs`` fits ``ours``, where ``None`` in ours is not yet resolved."""
    if isinstance(ours, dict) and isinstance(theirs, dict):
        return ours.keys() == theirs.keys() and all(fits(ours[k], theirs[k]) for k in ours)
    if isinstance(ours, list) and isinstance(theirs, list):
        return len(ours) == len(theirs) and all(fits(a, b) for a, b in zip(ours, theirs))
    return ours is None or ours == theirs
