"""What the benchmark records besides times (machine, threads, BLAS), and how it writes results."""

import datetime
import json
import os
import platform
import sys


def cpu_model():
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment(torch):
    """Machine, date, library versions, thread counts, BLAS libraries and the thread variables."""
    import numpy as np
    import scipy
    from threadpoolctl import threadpool_info

    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{cpu_model()}, {os.cpu_count()} CPUs, {platform.system()} {platform.release()}",
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "torch": torch.__version__,
        "torch_num_threads": torch.get_num_threads(),
        "blas": [
            {"library": pool["filepath"].split("site-packages/")[-1],
             **{key: pool.get(key) for key in ("user_api", "internal_api", "version", "num_threads",
                                               "threading_layer", "architecture")}}
            for pool in threadpool_info()
        ],
        "thread_env": {key: value for key, value in sorted(os.environ.items())
                       if key.startswith(("OPENBLAS_", "OMP_", "MKL_"))},
        "load_average": os.getloadavg(),
    }


def write_json(results, path):
    with open(path, "w") as file:
        json.dump(results, file, indent=2)
        file.write("\n")


def markdown_table(rows):
    """The README table: one line per row, times in milliseconds; the GEMM floor where measured."""
    lines = ["| row | numtorch (ms) | reference (ms) | ratio | target | GEMM floor / reference |",
             "|---|---|---|---|---|---|"]
    for row in rows:
        target = f"<= {row['target']}" if row["target"] is not None else ""
        if row["target"] is not None and not row["met"]:
            target += " (missed)"
        floor = f"{row['floor_ratio']:.2f}" if row.get("floor_ratio") is not None else ""
        lines.append(f"| {row['name']} | {row['time_s'][0] * 1e3:.3f} | {row['time_s'][1] * 1e3:.3f} "
                     f"({row['reference']}) | {row['ratio']:.2f} | {target} | {floor} |")
    return "\n".join(lines)


def bar_chart(rows, path, title):
    """Horizontal bars of the ratio per row, with each row's target and GEMM floor marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [row["name"] for row in rows]
    ratios = [row["ratio"] for row in rows]
    figure, axes = plt.subplots(figsize=(8, 0.5 * len(rows) + 1.5))
    colors = ["tab:green" if row["met"] else "tab:red" for row in rows]
    positions = range(len(rows))
    axes.barh(positions, ratios, color=colors)
    for i, row in enumerate(rows):
        if row["target"] is not None:
            axes.plot([row["target"]] * 2, [i - 0.4, i + 0.4], color="black", linewidth=2)
        axes.text(row["ratio"], i, f" {row['ratio']:.2f}", va="center")
    floors = [(i, row["floor_ratio"]) for i, row in enumerate(rows) if row.get("floor_ratio") is not None]
    if floors:
        axes.plot([f for _, f in floors], [i for i, _ in floors], "kx", label="GEMM floor")
    axes.axvline(1.0, color="gray", linestyle="--", linewidth=1)
    axes.set_yticks(list(positions), names)
    axes.invert_yaxis()
    axes.set_xlabel("time ratio numtorch / reference (lower is faster)\n"
                    "black bar: target; x: numtorch's matrix products alone (GEMM floor)")
    if floors:
        axes.legend(loc="upper right")
    axes.set_title(title)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
