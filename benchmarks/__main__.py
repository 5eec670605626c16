"""``python -m benchmarks``: numtorch against PyTorch on the CPU, every measurement in a fresh process.

Each row's contestants (numtorch and PyTorch, or numtorch's thread settings
and PyTorch) run one after the other in processes of their own, A B A B ...,
``--pairs`` rounds (7 by default). Both regenerate the same initial weights
and synthetic MNIST-shaped data from the seed (``benchmarks.networks``); each
times ``--windows`` windows of steps after ``--warmup`` untimed ones and
keeps its fastest window (the median window next to a busy core). A row
reports the median over the rounds of the per-round ratio, and its spread.

Rows (targets, as ratios numtorch / PyTorch):
- MLP 784-512-256-10 training at batch 32, 128 (<= 0.9) and 512 (<= 1.0), as
  users write it (the README loop; ``fit``) and as equal work (the bare step,
  neither library computing the gradient with respect to the data);
- the CNN (two 3x3 convolutions with ReLU and 2x2 max pooling, then Linear)
  training at batch 64 (<= 0.9);
- MLP inference in evaluation mode at batch 1 (<= 0.8) and 256 (<= 0.95);
- cold start: a fresh process imports the library, loads the saved MLP and
  predicts one sample; wall time from spawn and peak memory (<= 0.3 each);
- threads (issue 16): ``fit`` at batch 128 with ``threads="auto"`` against
  each fixed thread count and PyTorch, idle and next to one CPU-bound process
  the row starts itself (auto <= 1.05x the best fixed count idle, <= 1.2x busy).

Writes ``results.json`` (every process's report), ``results.md`` (the
README's table) and ``results.png``; with ``--runs N``, N runs in
``run-1``... and ``summary.md`` / ``summary.json`` (every run's ratio per
row and the median over the runs). The in-process race of both libraries is
``python -m benchmarks.race`` (a diagnostic).
"""

import argparse
import os
import pathlib
import time

from benchmarks import rows as row_builders
from benchmarks.isolated import run_row
from benchmarks.report import bar_chart, machine, markdown_table, summary, write_json


def sizes(text):
    return [int(v) for v in text.split(",") if v]


def names(text):
    return [v.strip() for v in text.split(",") if v.strip()]


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path("benchmarks/results"),
                        help="folder for results.json, results.md and results.png (default: %(default)s)")
    parser.add_argument("--runs", type=int, default=1, help="full runs in a row, each in OUT/run-K, "
                        "then OUT/summary.md (default: %(default)s)")
    parser.add_argument("--pairs", type=int, default=7,
                        help="rounds per row: each contestant once a round, in its own process (default: 7)")
    parser.add_argument("--groups", type=names, default=list(row_builders.GROUPS),
                        help=f"row groups to run (default: {','.join(row_builders.GROUPS)})")
    parser.add_argument("--rows", type=names, default=[],
                        help="only rows whose key starts with one of these, e.g. mlp-fit,cold (default: all)")
    parser.add_argument("--hidden", type=sizes, default=[512, 256],
                        help="MLP hidden sizes (default: 512,256)")
    parser.add_argument("--train-batches", type=sizes, default=[32, 128, 512],
                        help="MLP training batch sizes (default: 32,128,512)")
    parser.add_argument("--train-window", type=int, default=4096,
                        help="samples per timed window of MLP training, one epoch of fit (default: 4096)")
    parser.add_argument("--cnn-batch", type=int, default=64, help="CNN training batch (default: %(default)s)")
    parser.add_argument("--cnn-channels", type=sizes, default=[16, 32],
                        help="channels of the two CNN convolutions (default: 16,32)")
    parser.add_argument("--cnn-window", type=int, default=512,
                        help="samples per timed window of CNN training (default: %(default)s)")
    parser.add_argument("--infer-batches", type=sizes, default=[1, 256],
                        help="MLP inference batch sizes (default: 1,256)")
    parser.add_argument("--infer-window", type=sizes, default=[512, 8192],
                        help="samples per timed window, one per inference batch size (default: 512,8192)")
    parser.add_argument("--contention-batch", type=int, default=128,
                        help="batch of the thread rows (default: %(default)s)")
    parser.add_argument("--fixed-threads", type=sizes, default=None,
                        help=f"fixed thread counts the thread rows compare (default: 1,{os.cpu_count()})")
    parser.add_argument("--warmup", type=int, default=1, help="untimed windows first (default: %(default)s)")
    parser.add_argument("--windows", type=int, default=5,
                        help="timed windows per process (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    unknown = set(args.groups) - set(row_builders.GROUPS)
    if unknown:
        parser.error(f"--groups: unknown {sorted(unknown)}; expected some of {','.join(row_builders.GROUPS)}")
    if len(args.infer_window) != len(args.infer_batches):
        parser.error("--infer-window: expected one value per --infer-batches value")
    if args.pairs < 1 or args.runs < 1 or args.windows < 1 or args.warmup < 0:
        parser.error("--pairs, --runs and --windows must be >= 1, --warmup >= 0")
    return args


def run_once(args, out):
    """One full run: every row, then results.json, results.md and results.png in ``out``."""
    started = time.perf_counter()
    environment = machine()
    print(f"{environment['date']}  {environment['machine']}  load {environment['load_average']}", flush=True)
    rows = [run_row(row, args.pairs, log=lambda line: print(line, flush=True))
            for row in row_builders.all_rows(args)]
    environment["load_average_after"] = os.getloadavg()
    environment["seconds"] = time.perf_counter() - started
    for row in rows:
        for library, info in row.pop("environment").items():
            environment.setdefault(library, info)
    settings = {key: (str(value) if isinstance(value, pathlib.Path) else value)
                for key, value in vars(args).items()}
    results = {"environment": environment, "settings": settings, "rows": rows}
    out.mkdir(parents=True, exist_ok=True)
    table = markdown_table(results)
    write_json(results, out / "results.json")
    (out / "results.md").write_text(table + "\n")
    bar_chart(results, out / "results.png", f"numtorch / PyTorch, process-isolated, {environment['date']}")
    print(table)
    print(f"wrote {out}/results.json, results.md and results.png ({environment['seconds']:.0f} s)",
          flush=True)
    return results


def main(argv=None):
    args = parse_args(argv)
    if args.runs == 1:
        return [run_once(args, args.out)]
    runs = [run_once(args, args.out / f"run-{k}") for k in range(1, args.runs + 1)]
    text, table = summary(runs)
    (args.out / "summary.md").write_text(text + "\n")
    write_json(table, args.out / "summary.json")
    print(text)
    print(f"wrote {args.out}/summary.md and summary.json")
    return runs


if __name__ == "__main__":
    main()
