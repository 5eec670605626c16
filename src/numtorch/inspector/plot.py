"""``inspect.png``: small multiples of an inspector's report, one row per module (needs matplotlib).

Each row shows one module over the recorded steps:

1. its output: the bands between the 1st and 99th, 5th and 95th, 25th and
   75th percentiles and the median; the title gives the last record's share of
   zeros and dead units (ReLU) or of saturated outputs (Tanh, Sigmoid);
2. gradient norms on a log axis: |dL/d input| (the ``gradInput`` the module
   passes back) and |dL/dW| for each parameter;
3. the update/weight ratio |dW| / |W| of each parameter on a log axis, with
   the 1e-3 guide line of a healthy run.

A module named in a warning has its row's titles in red.
"""

import numpy as np

from numtorch.io.archive import atomic_write

GUIDE = 1e-3
BAND_COLOR = "tab:blue"
PARAMETER_COLORS = ("tab:orange", "tab:green", "tab:purple", "tab:brown")


def pyplot():
    """matplotlib's pyplot on the file-only Agg backend."""
    try:
        import matplotlib
    except ImportError:
        raise ImportError("inspect.png needs matplotlib: pip install 'numtorch[train]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def series(records, name, get):
    """``get(module record)`` at each record as floats (NaN where missing or ``None``)."""
    values = []
    for record in records:
        stats = record["modules"].get(name)
        value = None if stats is None else get(stats)
        values.append(np.nan if value is None else float(value))
    return np.array(values)


def positive(values):
    """NaN where a value cannot go on a log axis."""
    return np.where(values > 0, values, np.nan)


def nothing(axes, text):
    axes.text(0.5, 0.5, text, ha="center", va="center", color="0.4", transform=axes.transAxes)
    axes.set_xticks([])
    axes.set_yticks([])
    for spine in axes.spines.values():
        spine.set_color("0.85")


def draw_output(axes, steps, records, meta, percentiles):
    name = meta["name"]
    bands = [series(records, name, lambda s, i=i: (s["output"] or {}).get("percentiles", [None] * 7)[i])
             for i in range(len(percentiles))]
    if np.all(np.isnan(bands[len(bands) // 2])):
        nothing(axes, "no output recorded")
        return "output"
    index = {p: i for i, p in enumerate(percentiles)}
    for (low, high), alpha in (((1, 99), 0.18), ((5, 95), 0.3), ((25, 75), 0.5)):
        if low in index and high in index:
            axes.fill_between(steps, bands[index[low]], bands[index[high]], color=BAND_COLOR, alpha=alpha,
                              linewidth=0, label=f"{low}-{high}%")
    if 50 in index:
        axes.plot(steps, bands[index[50]], color="navy", linewidth=1.2, label="median")
    axes.set_ylabel("output value")
    last = next((r["modules"][name]["output"] for r in reversed(records)
                 if r["modules"].get(name, {}).get("output")), None)
    title = "output"
    if last is not None:
        if meta["kind"] in ("tanh", "sigmoid") and last["saturated"] is not None:
            title += f" ({last['saturated']:.0%} saturated)"
        elif meta["kind"] == "relu":
            title += f" ({last['zeros']:.0%} zeros, {last['dead']:.0%} units dead)"
    return title


def draw_gradients(axes, steps, records, meta):
    name = meta["name"]
    drawn = False
    grad_input = positive(series(records, name, lambda s: s["grad_input_norm"]))
    if not np.all(np.isnan(grad_input)):
        axes.plot(steps, grad_input, color="black", linewidth=1.2, label="|dL/d input|")
        drawn = True
    for color, param in zip(PARAMETER_COLORS, meta["parameters"]):
        values = positive(series(records, name,
                                 lambda s, p=param: s["parameters"].get(p, {}).get("grad_norm")))
        if not np.all(np.isnan(values)):
            axes.plot(steps, values, color=color, linewidth=1.2, label=f"|dL/d{param}|")
            drawn = True
    if not drawn:
        nothing(axes, "no gradient recorded\n(first layer: not needed)")
        return
    axes.set_yscale("log")
    axes.set_ylabel("L2 norm")


def draw_updates(axes, steps, records, meta):
    name = meta["name"]
    if not meta["parameters"]:
        nothing(axes, "no parameters")
        return
    drawn = False
    for color, param in zip(PARAMETER_COLORS, meta["parameters"]):
        values = positive(series(records, name,
                                 lambda s, p=param: s["parameters"].get(p, {}).get("update_ratio")))
        if not np.all(np.isnan(values)):
            axes.plot(steps, values, color=color, linewidth=1.2, label=param)
            drawn = True
    if not drawn:
        nothing(axes, "no update recorded")
        return
    axes.axhline(GUIDE, color="0.3", linestyle="--", linewidth=1, label="1e-3 guide")
    axes.set_yscale("log")
    axes.set_ylabel("|dW| / |W|")


def plot(report, path):
    """Draw ``report`` (``Inspector.report()`` or a loaded ``inspect.json``) as a PNG at ``path``."""
    plt = pyplot()
    figure = draw(report)
    try:
        atomic_write(path, lambda file: figure.savefig(file, format="png", dpi=72))
    finally:
        plt.close(figure)


def draw(report):
    """The matplotlib figure of ``report``: one row per module, three panels a row."""
    plt = pyplot()
    from matplotlib.ticker import NullFormatter
    modules, records = report["modules"], report["records"]
    if not modules or not records:
        raise ValueError(f"inspect plot: nothing to draw: expected at least one module and one record, "
                         f"got {len(modules)} modules and {len(records)} records")
    warnings = report.get("warnings", ())
    warned = {tuple(w["key"])[1] for w in warnings if len(w["key"]) > 1}
    steps = np.array([record["step"] for record in records])
    rows, height = len(modules), 1.6
    figure, grid = plt.subplots(rows, 3, figsize=(12, height * rows + 0.7), squeeze=False)
    shown = [set(), set(), set()]  # per column, the labels a legend above already explains
    for row, meta in zip(grid, modules):
        color = "tab:red" if meta["name"] in warned else "black"
        output_title = draw_output(row[0], steps, records, meta, report["percentiles"])
        draw_gradients(row[1], steps, records, meta)
        draw_updates(row[2], steps, records, meta)
        for column, (axes, title) in enumerate(zip(row, (output_title, "gradient norms",
                                                         "update / weight ratio"))):
            axes.set_title(f"{meta['name']}: {title}", fontsize=10, color=color, loc="left")
            if not axes.has_data():
                continue
            axes.set_xlabel("step", fontsize=9, labelpad=1)
            axes.yaxis.label.set_size(9)
            axes.tick_params(labelsize=8)
            axes.grid(alpha=0.3)
            if axes.get_yscale() == "log":
                axes.yaxis.set_minor_formatter(NullFormatter())
            labels = set(axes.get_legend_handles_labels()[1])
            if not labels <= shown[column]:
                axes.legend(fontsize=8, loc="best", framealpha=0.7)
                shown[column] |= labels
            if len(steps) == 1:
                for line in axes.get_lines():
                    line.set_marker("o")
    title = f"numtorch inspect: {len(records)} records, every {report['every']} steps"
    if warnings:
        title += f"; {len(warnings)} warning{'s' if len(warnings) > 1 else ''} (numtorch inspect prints them)"
    figure.suptitle(title, fontsize=12, color="tab:red" if warnings else "black")
    figure.tight_layout(rect=(0, 0, 1, 1 - 0.45 / (height * rows + 0.7)))
    return figure
