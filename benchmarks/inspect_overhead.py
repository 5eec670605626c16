"""``python -m benchmarks.inspect_overhead``: what ``fit(..., inspect=Inspector(model))`` costs.

Trains a ``numtorch train`` preset (``--model mlp`` / ``cnn``, the CLI's data
split) with ``fit`` for ``--epochs`` epochs, each configuration in its own
process: without the inspector, and with it at ``--every`` steps (the default
interval). Processes alternate (off, on, off, on ...) so a change in the
machine's load touches both. Per model it prints the median training time of
each and two overheads: the ratio of the medians, and the share of the
inspected runs' time spent inside the inspector's calls (timed in the
process, so the machine's noise does not enter it). Writes ``--out`` JSON.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

from numtorch.inspector import DEFAULT_EVERY
from numtorch.io.archive import strict_json


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.inspect_overhead",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="mlp,cnn", help="presets, comma-separated (default: mlp,cnn)")
    parser.add_argument("--data", default="mnist:../shared/data/mnist-t10k",
                        help="numtorch train --data (default: %(default)s)")
    parser.add_argument("--hidden", default="256,128", help="dense hidden sizes (default: %(default)s)")
    parser.add_argument("--epochs", type=int, default=2, help="epochs per process (default: %(default)s)")
    parser.add_argument("--every", type=int, default=DEFAULT_EVERY,
                        help="inspector interval (default: %(default)s)")
    parser.add_argument("--repeats", type=int, default=5,
                        help="processes per configuration (default: %(default)s)")
    parser.add_argument("--threads", type=int, help="BLAS threads of every process (default: as BLAS starts)")
    parser.add_argument("--out", help="write the results as JSON here")
    parser.add_argument("--child", nargs=2, metavar=("MODEL", "EVERY"), help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def child(args, model_kind, every):
    """Train once in this process; print ``{"seconds", "inspector_seconds", "steps", "records"}``."""
    import numtorch as nt
    from numtorch.cli import fit_to, hidden_sizes, load_data
    from numtorch.data import train_test_split
    from numtorch.inspector import Inspector
    from numtorch.models import build
    from numtorch.train import fit

    (X, y), _, _ = load_data(args.data)
    (X_train, y_train), _ = train_test_split(X, y, 0.1, seed=0)
    nt.manual_seed(0)
    model, shape = build(model_kind, X.shape[1:], int(y.max()) + 1, hidden_sizes(args.hidden))
    X_train = fit_to(X_train, shape, "--data")
    inspector, spent = None, [0.0]
    if every > 0:
        inspector = Inspector(model, every=every, echo=False)
        step = inspector.step

        def timed_step(*arguments, **keywords):
            start = time.perf_counter()
            try:
                return step(*arguments, **keywords)
            finally:
                spent[0] += time.perf_counter() - start

        inspector.step = timed_step
    start = time.perf_counter()
    fit(model, nt.CrossEntropyCriterion(), nt.Adam(model, lr=1e-3), (X_train, y_train), epochs=args.epochs,
        progress=False, threads=args.threads, inspect=inspector)
    seconds = time.perf_counter() - start
    print(json.dumps({"seconds": seconds, "inspector_seconds": spent[0],
                      "steps": -(-len(y_train) // 64) * args.epochs,
                      "records": 0 if inspector is None else len(inspector.records)}))


def run_child(args, model_kind, every):
    command = [sys.executable, "-m", "benchmarks.inspect_overhead", "--child", model_kind, str(every),
               "--data", args.data, "--hidden", args.hidden, "--epochs", str(args.epochs)]
    if args.threads is not None:
        command += ["--threads", str(args.threads)]
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # benchmarks/ is a package there
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
    result = subprocess.run(command, capture_output=True, text=True, check=True, env=env)
    return json.loads(result.stdout.strip().splitlines()[-1])


def main(argv=None):
    args = parse_args(argv)
    if args.child:
        return child(args, args.child[0], int(args.child[1]))
    results = {}
    for model_kind in args.models.split(","):
        runs = {"off": [], "on": []}
        for _ in range(args.repeats):
            for label, every in (("off", 0), ("on", args.every)):
                runs[label].append(run_child(args, model_kind, every))
        off = statistics.median(run["seconds"] for run in runs["off"])
        on = statistics.median(run["seconds"] for run in runs["on"])
        share = statistics.median(run["inspector_seconds"] / run["seconds"] for run in runs["on"])
        results[model_kind] = {"every": args.every, "epochs": args.epochs, "steps": runs["on"][0]["steps"],
                               "records": runs["on"][0]["records"], "median_off_s": off, "median_on_s": on,
                               "ratio_of_medians": on / off, "inspector_share": share, "runs": runs}
        print(f"{model_kind}: {runs['on'][0]['steps']} steps, {runs['on'][0]['records']} records every "
              f"{args.every}: median {off:.2f} s without, {on:.2f} s with the inspector "
              f"(x{on / off:.3f}); time inside the inspector {share:.2%} of the inspected runs "
              f"({args.repeats} processes each)")
    if args.out:
        with open(args.out, "w") as file:
            file.write(strict_json(results, indent=1))
    return results


if __name__ == "__main__":
    main()
