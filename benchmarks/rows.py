"""The rows of the process-isolated benchmark: who runs what, and which ratios are reported.

A row has contestants (a label and the spec its child process runs) and
comparisons (a ratio of one contestant's value to another's, or to the best
of several, with its target). Targets are issue 14's (training, CNN,
inference, cold start) and issue 16's (threads under contention).
"""

import os

GROUPS = ("train", "cnn", "inference", "cold", "contention")

FORMS = {
    "readme": "README loop",
    "fit": "fit",
    "equal": "equal work",
}


def spec(library, form, args, network="mlp", batch=1, steps=1, **extra):
    """A child's spec: what to build (``benchmarks.networks``), how long to time it, and ``extra``."""
    base = {"library": library, "form": form, "network": network, "batch": batch, "steps": steps,
            "warmup": args.warmup, "windows": args.windows, "seed": args.seed}
    base.update({"hidden": args.hidden} if network == "mlp" else {"channels": args.cnn_channels})
    base.update(extra)
    return base


def pair(name, key, group, form, args, target, network="mlp", batch=1, steps=1, **extra):
    """numtorch against PyTorch, both in ``form``, one ratio of step times."""
    return {
        "key": key, "name": name, "group": group, "statistic": "fastest", "busy": False,
        "contestants": [
            {"label": "numtorch", "spec": spec("numtorch", form, args, network, batch, steps, **extra)},
            {"label": "PyTorch", "spec": spec("torch", form, args, network, batch, steps)},
        ],
        "comparisons": [{"name": "", "metric": "step", "of": "numtorch", "to": ["PyTorch"],
                         "target": target}],
    }


FIT_WARMUP_STEPS = 16


def window_steps(samples, batch):
    return max(2, samples // batch)


def training_rows(args):
    rows = []
    for form in ("readme", "fit", "equal"):
        for batch in args.train_batches:
            steps = window_steps(args.train_window, batch)
            row = pair(f"MLP train, batch {batch}, {FORMS[form]}", f"mlp-{form}-{batch}", "train", form, args,
                       0.9 if batch < 512 else 1.0, batch=batch, steps=steps)
            if form == "fit":
                warm_up_fit(row, steps)
            rows.append(row)
    return rows


def warm_up_fit(row, steps):
    """At least ``FIT_WARMUP_STEPS`` untimed steps: fit's thread probe at its start (12 steps with 1
    and 2 threads) ends before the timed windows, which measure the training that follows."""
    for contestant in row["contestants"]:
        spec = contestant["spec"]
        spec["warmup"] = max(spec["warmup"], -(-FIT_WARMUP_STEPS // steps))


def cnn_rows(args):
    batch = args.cnn_batch
    return [pair(f"CNN train, batch {batch}, equal work", f"cnn-equal-{batch}", "cnn", "equal", args, 0.9,
                 network="cnn", batch=batch, steps=window_steps(args.cnn_window, batch))]


def inference_rows(args):
    rows = []
    for batch, samples in zip(args.infer_batches, args.infer_window):
        rows.append(pair(f"MLP inference, batch {batch}", f"mlp-inference-{batch}", "inference", "inference",
                         args, 0.8 if batch == 1 else 0.95, batch=batch, steps=window_steps(samples, batch)))
    return rows


def cold_rows(args):
    """A fresh process: import, load the saved MLP, predict one sample; wall time and peak memory."""
    contestants = [{"label": label, "spec": {"library": library, "form": "cold", "network": "mlp",
                                             "hidden": args.hidden, "seed": args.seed}}
                   for label, library in (("numtorch", "numtorch"), ("PyTorch", "torch"))]
    return [{
        "key": "cold-start", "name": "Cold start", "group": "cold",
        "statistic": None, "busy": False, "contestants": contestants,
        "comparisons": [
            {"name": "wall time", "metric": "wall", "of": "numtorch", "to": ["PyTorch"], "target": 0.3},
            {"name": "peak memory", "metric": "rss", "of": "numtorch", "to": ["PyTorch"], "target": 0.3},
        ],
    }]


def contention_rows(args):
    """numtorch's fit with adaptive threads against each fixed count and PyTorch, idle and next to one
    CPU-bound process that the row starts itself (issue 16)."""
    batch = args.contention_batch
    steps = window_steps(args.train_window, batch)
    counts = args.fixed_threads or sorted({1, os.cpu_count() or 1})
    fixed = [f"numtorch, {n} thread{'s' if n > 1 else ''}" for n in counts]
    rows = []
    for busy in (False, True):
        state = "busy" if busy else "idle"
        contestants = [{"label": label, "spec": spec("numtorch", "fit", args, "mlp", batch, steps, threads=n)}
                       for label, n in zip(["numtorch, auto"] + fixed, ["auto"] + counts)]
        contestants.append({"label": "PyTorch", "spec": spec("torch", "fit", args, "mlp", batch, steps)})
        row = {
            "key": f"threads-{state}-{batch}", "group": "contention", "busy": busy,
            "name": f"Threads, fit batch {batch}, {state}",
            # Next to a busy core the step times scatter: the typical window, not the luckiest.
            "statistic": "median" if busy else "fastest",
            "contestants": contestants,
            "comparisons": [
                {"name": "auto / best fixed", "metric": "step", "of": "numtorch, auto", "to": fixed,
                 "target": 1.2 if busy else 1.05},
                {"name": "auto / PyTorch", "metric": "step", "of": "numtorch, auto", "to": ["PyTorch"],
                 "target": None},
            ],
        }
        warm_up_fit(row, steps)
        rows.append(row)
    return rows


def all_rows(args):
    builders = {"train": training_rows, "cnn": cnn_rows, "inference": inference_rows, "cold": cold_rows,
                "contention": contention_rows}
    rows = [row for group in args.groups for row in builders[group](args)]
    if args.rows:
        rows = [row for row in rows if any(row["key"].startswith(prefix) for prefix in args.rows)]
    return rows
