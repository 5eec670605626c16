"""What the benchmark writes: results.json, the Markdown table for the README, a chart, and the
summary of several runs."""

import datetime
import os
import platform
import statistics
import sys

from numtorch.io.archive import strict_json


def cpu_model():
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine():
    """Date, machine, Python and the load average, as the parent process sees them."""
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{cpu_model()}, {os.cpu_count()} CPUs, {platform.system()} {platform.release()}",
        "python": sys.version.split()[0],
        "load_average": os.getloadavg(),
    }


def write_json(results, path):
    with open(path, "w") as file:
        file.write(strict_json(results, indent=1) + "\n")  # NaN or infinity as null


def unit_value(number, metric):
    return f"{number:.0f} MB" if metric == "rss" else f"{number * 1e3:.3f} ms"


def comparison_name(row, comparison):
    return row["name"] + (f": {comparison['name']}" if comparison["name"] else "")


def target_text(comparison):
    if comparison["target"] is None:
        return ""
    return f"<= {comparison['target']}" + ("" if comparison["met"] else " (missed)")


def markdown_table(results):
    """One line per comparison: the two medians, the median ratio over the rounds, its spread, the target."""
    lines = ["| row | numtorch | reference | ratio (median) | spread (min-max) | rounds | target |",
             "|---|---|---|---|---|---|---|"]
    for row in results["rows"]:
        for comparison in row["comparisons"]:
            reference = " / ".join(comparison["to"])
            ours = unit_value(comparison["of_median"], comparison["metric"])
            theirs = unit_value(comparison["to_median"], comparison["metric"])
            lines.append(
                f"| {comparison_name(row, comparison)} | {ours} | {theirs} ({reference}) "
                f"| {comparison['median']:.2f} | {comparison['min']:.2f}-{comparison['max']:.2f} "
                f"| {row['pairs']} | {target_text(comparison)} |")
    return "\n".join(lines)


def bar_chart(results, path, title):
    """Horizontal bars of the median ratio per comparison, the spread of the rounds as a whisker, the
    target as a black tick."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    entries = [(comparison_name(row, comparison), comparison) for row in results["rows"]
               for comparison in row["comparisons"]]
    figure, axes = plt.subplots(figsize=(11, 0.42 * len(entries) + 1.8))
    positions = range(len(entries))
    medians = [comparison["median"] for _, comparison in entries]
    spread = [[m - c["min"] for m, (_, c) in zip(medians, entries)],
              [c["max"] - m for m, (_, c) in zip(medians, entries)]]
    colors = ["tab:gray" if c["met"] is None else "tab:green" if c["met"] else "tab:red" for _, c in entries]
    axes.barh(positions, medians, color=colors, xerr=spread, ecolor="black", capsize=3)
    for i, (_, comparison) in enumerate(entries):
        if comparison["target"] is not None:
            axes.plot([comparison["target"]] * 2, [i - 0.4, i + 0.4], color="black", linewidth=2)
        axes.text(comparison["max"], i, f"  {comparison['median']:.2f}", va="center")
    axes.axvline(1.0, color="gray", linestyle="--", linewidth=1)
    axes.set_yticks(list(positions), [name for name, _ in entries])
    axes.invert_yaxis()
    axes.set_xlabel("ratio numtorch / reference, time or memory (lower is better)\n"
                    "bar: median of the rounds; whisker: min to max; black tick: target")
    axes.set_title(title)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def summary(runs):
    """Markdown: every run's median ratio per comparison, the median over the runs, how often the
    target was met; and the same as a dict for JSON."""
    table = {}
    for results in runs:
        for row in results["rows"]:
            for comparison in row["comparisons"]:
                entry = table.setdefault(comparison_name(row, comparison),
                                         {"target": comparison["target"], "ratios": []})
                entry["ratios"].append(comparison["median"])
    count = len(runs)
    lines = [f"| row | ratios, {count} run{'s' if count > 1 else ''} | median | target | met in |",
             "|---|---|---|---|---|"]
    for name, entry in table.items():
        entry["median"] = statistics.median(entry["ratios"])
        target = entry["target"]
        ratios = entry["ratios"]
        met = "" if target is None else f"{sum(r <= target for r in ratios)} of {len(ratios)}"
        lines.append(f"| {name} | {' / '.join(f'{r:.2f}' for r in entry['ratios'])} | {entry['median']:.2f} "
                     f"| {'' if target is None else f'<= {target}'} | {met} |")
    return "\n".join(lines), table
