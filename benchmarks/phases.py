"""``python -m benchmarks.phases``: where the MLP training step's time goes, next to its GEMM floor.

Races the numtorch step against its matrix products alone (as the benchmark's
step / GEMM-only row does) with a timer around each phase of the step:
zeroGradParameters, forward, criterion (forward and backward), backward, and
the SGD momentum update. Prints the median of each phase and its share of the
GEMM-only time; nothing is written.
"""

import argparse
import statistics
import time

import numtorch as nt
from benchmarks import models
from benchmarks.race import sizes
from benchmarks.timing import race
from numtorch.optim import sgd_momentum

PHASES = ("zero grads", "forward", "criterion", "backward", "SGD update")


def timed_step(model, batches):
    """``(step, phases)``: the benchmark's training step, recording each phase's seconds in ``phases``."""
    criterion = nt.ClassNLLCriterion(log_input=True)
    params, grads = model.getParameters(), model.getGradParameters()
    config = {"learning_rate": models.LEARNING_RATE, "momentum": models.MOMENTUM}
    state = {}
    phases = {name: [] for name in PHASES}

    def step(i):
        x, y = batches[i % len(batches)]
        marks = [time.perf_counter()]
        model.zeroGradParameters()
        marks.append(time.perf_counter())
        output = model.forward(x)
        marks.append(time.perf_counter())
        loss = criterion.forward(output, y)
        grad = criterion.backward(output, y)
        marks.append(time.perf_counter())
        model.backward(x, grad)
        marks.append(time.perf_counter())
        sgd_momentum(params, grads, config, state)
        marks.append(time.perf_counter())
        for name, start, end in zip(PHASES, marks, marks[1:]):
            phases[name].append(end - start)
        return loss

    return step, phases


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.phases", description=__doc__.splitlines()[0])
    parser.add_argument("--hidden", type=sizes, default=[512, 256])
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=21)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--settle", type=float, default=0.15)
    args = parser.parse_args(argv)

    data = models.synthetic_batches(0, args.batch, 8, flat=True)
    nt.manual_seed(0)
    step, phases = timed_step(models.mlp(args.hidden), data)
    nt.manual_seed(0)
    floor = models.gemm_only_step(models.mlp(args.hidden), data)
    times, _ = race([step, floor], 5, args.repeats, args.steps, args.settle, rewarm=1)
    total, gemm = statistics.median(times[0]), statistics.median(times[1])
    medians = {name: statistics.median(values) for name, values in phases.items()}
    layers = [models.PIXELS, *args.hidden, models.CLASSES]
    print(f"MLP {layers}, batch {args.batch}: step {total * 1e3:.3f} ms, GEMM only {gemm * 1e3:.3f} ms, "
          f"ratio {total / gemm:.2f}")
    for name, value in medians.items():
        print(f"  {name:<11} {value * 1e3:7.3f} ms  {value / gemm:6.1%} of the GEMM time")
    return total, gemm, medians


if __name__ == "__main__":
    main()
