"""``python -m benchmarks``: time numtorch against PyTorch, write JSON and a bar chart.

Rows (targets from issue #5, as ratios numtorch / reference):
MLP 784-512-256-10 training at batch 32, 128 (<= 0.9) and 512 (<= 1.0);
CNN (two 3x3 convolutions with ReLU and 2x2 max pooling, then Linear) training
at batch 64 (<= 1.3);
MLP inference in evaluation mode at batch 1 and 256 (<= 0.9); the MLP
training step at batch 128 against the time of its matrix multiplies alone
(<= 1.2). The MLP rows also time numtorch's matrix products alone (the GEMM
floor) against PyTorch: no implementation on this BLAS gets below that ratio.
Use the size options for a quick run (the smoke test does).
"""

import argparse
import pathlib
import statistics

import numpy as np

import numtorch as nt
from benchmarks import models
from benchmarks.report import bar_chart, environment, markdown_table, write_json
from benchmarks.timing import race


def sizes(text):
    return [int(v) for v in text.split(",") if v]


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path("benchmarks/results"),
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
    env["load_average_after"] = __import__("os").getloadavg()
    settings = {key: (str(value) if isinstance(value, pathlib.Path) else value)
                for key, value in vars(args).items()}
    results = {"environment": env, "settings": settings, "rows": rows}
    args.out.mkdir(parents=True, exist_ok=True)
    write_json(results, args.out / "results.json")
    bar_chart(rows, args.out / "results.png", f"numtorch / reference, {env['date']}")
    print(markdown_table(rows))
    print(f"wrote {args.out / 'results.json'} and {args.out / 'results.png'}")
    return results


if __name__ == "__main__":
    main()
