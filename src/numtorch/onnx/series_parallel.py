"""A graph of modules turned into numtorch containers, by series-parallel decomposition.

A computation graph (what an ONNX file holds) is a DAG: every value is the
graph's input or the output of one module, which reads one or more values. A
numtorch network is a tree of containers. The two meet where the graph is
*series-parallel*: built from one source by chaining (``Sequential``) and by
forking into branches that a table module joins again (``ConcatTable`` then
``CAddTable``, ``CMulTable`` or ``JoinTable``; ``ConcatTable`` then
``JoinTable(dim)`` is written ``Concat(dim, ...)``).

The fork of a join is found with dominators, not by matching shapes: the
value where the branches of a join ``m(u_1, ..., u_k)`` start is the nearest
value every path from the source to each ``u_i`` passes through (their
nearest common dominator ``d``), so the join reads
``Sequential(<source -> d>, ConcatTable(<d -> u_1>, ..., <d -> u_k>), m)``,
each part built the same way. A branch that is ``d`` itself is
``Identity()`` (the skip of a residual block). A graph that is not
series-parallel would need one module in two branches; that is refused,
naming the module.
"""

from numtorch.containers import Concat, ConcatTable, Sequential
from numtorch.layers import Identity, JoinTable


class NotSeriesParallel(ValueError):
    """The graph needs one module in two places of the container tree."""


def dominator_tree(source, producers):
    """``{value: its immediate dominator}`` for every value the outputs can need (the source maps to None).

    ``producers`` maps each computed value to ``(module, [input values])``. In a
    DAG the dominators of a value are the value and the common dominators of
    its producer's inputs, so one pass in dependency order gives them.
    """
    parent, depth = {source: None}, {source: 0}

    def common(a, b):
        while a != b:
            if depth[a] < depth[b]:
                a, b = b, a
            a = parent[a]
        return a

    def visit(value):
        pending = [value]
        while pending:
            top = pending[-1]
            if top in parent:
                pending.pop()
                continue
            inputs = producers[top][1]
            missing = [v for v in inputs if v not in parent]
            if missing:
                pending.extend(missing)
                continue
            pending.pop()
            dominator = inputs[0]
            for other in inputs[1:]:
                dominator = common(dominator, other)
            parent[top], depth[top] = dominator, depth[dominator] + 1

    return parent, visit, common


def chain(modules):
    """One module for a series: ``Identity()`` for none, the module for one, else a ``Sequential``."""
    if not modules:
        return Identity()
    if len(modules) == 1:
        return modules[0]
    return Sequential(*modules)


def nest(source, outputs, producers, describe=repr):
    """The module that maps ``source`` to ``outputs`` (one value, or a list of values: a table).

    ``producers`` maps each computed value to ``(module, [input values])``;
    every value must come from ``source`` (values are any hashable names).
    Returns a ``Sequential``. Raises ``NotSeriesParallel`` naming the module
    (through ``describe(value)``) that two branches would share.
    """
    parent, visit, common = dominator_tree(source, producers)
    placed = set()

    def series(start, end):
        """The modules from ``start`` to ``end`` in order (``start`` dominates ``end``)."""
        modules = []
        value = end
        while value != start:
            if value in placed:
                raise NotSeriesParallel(
                    f"{describe(value)} is read by two branches that join elsewhere: the graph is not "
                    "series-parallel, so it has no numtorch container form")
            placed.add(value)
            module, inputs = producers[value]
            if len(inputs) == 1:
                modules.append(module)
                value = inputs[0]
                continue
            fork = inputs[0]
            for other in inputs[1:]:
                fork = common(fork, other)
            branches = [chain(series(fork, input)) for input in inputs]
            if isinstance(module, JoinTable):
                modules.append(Concat(module.dim, *branches))
            else:
                modules += [module, ConcatTable(*branches)]
            value = fork
        return modules[::-1]

    ends = outputs if isinstance(outputs, list) else [outputs]
    for value in ends:
        visit(value)
    if not isinstance(outputs, list):
        modules = series(source, outputs)
    else:
        fork = ends[0]
        for other in ends[1:]:
            fork = common(fork, other)
        modules = series(source, fork)
        modules.append(ConcatTable(*(chain(series(fork, value)) for value in ends)))
    return Sequential(*flat(modules)) if modules else Sequential(Identity())


def flat(modules):
    """Nested plain ``Sequential``s spliced into their parent's list."""
    spliced = []
    for module in modules:
        if type(module) is Sequential:
            spliced += flat(module.modules)
        else:
            spliced.append(module)
    return spliced
