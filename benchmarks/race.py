"""``python -m benchmarks.race``: a DIAGNOSTIC, both libraries raced in one process (not the headline).

The headline benchmark (``python -m benchmarks``) runs every contestant in a
process of its own. This race runs numtorch and PyTorch side by side in ONE
process, alternating repetition by repetition; it is kept because it can
also time numtorch's matrix products alone (the GEMM floor) on the very same
arrays, and because it is quick. Its ratios are not what users see: next to
numtorch's BLAS thread pool PyTorch's step slows down (MLP training at batch
128 measured 4.58 ms for PyTorch here, 2.9-3.5 ms in a process of its own on
the same machine minutes apart), which flatters numtorch.

Rows: MLP 784-512-256-10 training at batch 32, 128 and 512; the CNN
training at batch 64; MLP inference in evaluation mode at batch 1 and 256;
the MLP training step at batch 128 against its matrix multiplies alone. The
MLP rows also time numtorch's matrix products alone (the GEMM floor).
Use the size options for a quick run (the smoke test does).
"""

import argparse
import datetime
import os
import pathlib
import platform
import statistics
import sys

import numpy as np

import numtorch as nt
from benchmarks import models
from benchmarks.report import cpu_model, write_json
from benchmarks.timing import race


def sizes(text):
    return [int(v) for v in text.split(",") if v]


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.race", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path("benchmarks/results/race"),
                        help="folder for results.json and results.png (default: %(default)s)")
    parser.add_argument("--hidden", type=sizes, default=[512, 256],
                        help="MLP hidden sizes, comma-separated (default: 512,256)")
    parser.add_argument("--train-batches", type=sizes, default=[32, 128, 512],
                        help="MLP training batch sizes (default: 32,128,512)")
    parser.add_argument("--cnn-batch", type=int, default=64,
                        help="CNN training batch size (default: %(default)s)")
    parser.add_argument("--cnn-channels", type=sizes, default=[16, 32],
                        help="channels of the two CNN convolutions (default: 16,32)")
    parser.add_argument("--infer-batches", type=sizes, default=[1, 256],
                        help="MLP inference batch sizes (default: 1,256)")
    parser.add_argument("--gemm-batch", type=int, default=128,
                        help="batch of the step-versus-GEMM row (default: %(default)s)")
    parser.add_argument("--repeats", type=int, default=21,
                        help="timed repetitions per contestant (default: %(default)s)")
    parser.add_argument("--steps", type=int, default=10, help="steps per repetition (default: %(default)s)")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps first (default: %(default)s)")
    parser.add_argument("--settle", type=float, default=0.15,
                        help="seconds to sleep before each timed repetition, so that the other "
                             "library's idle worker threads stop spinning (default: %(default)s)")
    parser.add_argument("--rewarm", type=int, default=1,
                        help="untimed steps after each settle, so that the timed steps start warm "
                             "(default: %(default)s)")
    parser.add_argument("--data-batches", type=int, default=8,
                        help="distinct synthetic batches cycled through (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


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


def max_difference(ours, theirs):
    """Largest absolute difference between what the two contestants returned, step by step."""
    return max(float(np.max(np.abs(np.asarray(a) - np.asarray(b)))) for a, b in zip(ours, theirs))


def race_row(name, target, reference, ours, theirs, args, compare=True, floor=None):
    """Race ``ours`` against ``theirs`` (and ``floor``, numtorch's matrix products alone, when given)."""
    contestants = [ours, theirs] + ([floor] if floor is not None else [])
    times, values = race(contestants, args.warmup, args.repeats, args.steps, args.settle, args.rewarm)
    medians = [statistics.median(t) for t in times]
    ratio = medians[0] / medians[1]
    row = {
        "name": name,
        "reference": reference,
        "time_s": medians[:2],
        "best_s": [min(t) for t in times[:2]],
        "ratio": ratio,
        "target": target,
        "met": target is None or ratio <= target,
        "repetitions_s": [list(t) for t in times[:2]],
        "max_difference": max_difference(values[0], values[1]) if compare else None,
        "floor_s": None,
        "floor_ratio": None,
    }
    if floor is not None:
        row["floor_s"] = medians[2]
        row["floor_ratio"] = medians[2] / medians[1]
        row["floor_repetitions_s"] = list(times[2])
    if compare and isinstance(values[0][0], float):
        row["losses"] = [values[0][: args.steps], values[1][: args.steps]]
    floor_text = f"  GEMM floor {medians[2] * 1e3:9.3f} ms ({row['floor_ratio']:.2f})" if floor else ""
    print(f"{name:<32} {medians[0] * 1e3:9.3f} ms  {reference} {medians[1] * 1e3:9.3f} ms  "
          f"ratio {ratio:5.2f}{floor_text}", flush=True)
    return row


def fresh_mlp(args):
    nt.manual_seed(args.seed)
    return models.mlp(args.hidden)


def run(args):
    import torch

    rows = []
    for batch in args.train_batches:
        model = fresh_mlp(args)
        twin = models.torch_twin(torch, model)
        data = models.synthetic_batches(args.seed, batch, args.data_batches, flat=True)
        rows.append(race_row(f"MLP train, batch {batch}", 0.9 if batch < 512 else 1.0, "PyTorch",
                             models.numtorch_train_step(model, data),
                             models.torch_train_step(torch, twin, data), args,
                             floor=models.gemm_only_step(fresh_mlp(args), data)))
    nt.manual_seed(args.seed)
    model = models.cnn(args.cnn_channels)
    twin = models.torch_twin(torch, model)
    data = models.synthetic_batches(args.seed, args.cnn_batch, args.data_batches, flat=False)
    rows.append(race_row(f"CNN train, batch {args.cnn_batch}", 1.3, "PyTorch",
                         models.numtorch_train_step(model, data),
                         models.torch_train_step(torch, twin, data), args))
    for batch in args.infer_batches:
        model = fresh_mlp(args)
        twin = models.torch_twin(torch, model)
        data = models.synthetic_batches(args.seed, batch, args.data_batches, flat=True)
        rows.append(race_row(f"MLP inference, batch {batch}", 0.9, "PyTorch",
                             models.numtorch_inference(model, data),
                             models.torch_inference(torch, twin, data), args,
                             floor=models.products_only_inference(fresh_mlp(args), data)))
    data = models.synthetic_batches(args.seed, args.gemm_batch, args.data_batches, flat=True)
    rows.append(race_row(f"MLP train step / GEMM only, batch {args.gemm_batch}", 1.2, "GEMM only",
                         models.numtorch_train_step(fresh_mlp(args), data),
                         models.gemm_only_step(fresh_mlp(args), data), args, compare=False))
    return rows


def main(argv=None):
    args = parse_args(argv)
    import torch

    env = environment(torch)
    print(f"{env['date']}  {env['machine']}  torch threads {env['torch_num_threads']}  "
          f"load {env['load_average']}", flush=True)
    rows = run(args)
    env["load_average_after"] = os.getloadavg()
    settings = {key: (str(value) if isinstance(value, pathlib.Path) else value)
                for key, value in vars(args).items()}
    results = {"environment": env, "settings": settings, "rows": rows}
    args.out.mkdir(parents=True, exist_ok=True)
    write_json(results, args.out / "results.json")
    bar_chart(rows, args.out / "results.png", f"in-process race (diagnostic), {env['date']}")
    print(markdown_table(rows))
    print(f"wrote {args.out / 'results.json'} and {args.out / 'results.png'}")
    return results


if __name__ == "__main__":
    main()
