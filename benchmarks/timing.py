"""Timing contestants alternately, repetition by repetition."""

import time


def race(contestants, warmup, repeats, steps, settle=0.0, rewarm=0):
    """Time each ``step(i)`` in ``contestants`` against the others, rotating which goes first.

    Before each timed repetition the process sleeps ``settle`` seconds: after
    work, OpenBLAS and OpenMP worker threads keep spinning for a while, and
    they would otherwise take CPU from whichever contestant runs next. The
    sleep leaves the contestant cold (its worker threads parked, its arrays
    out of cache), which a training epoch of consecutive steps never is, so
    ``rewarm`` untimed steps follow it before the clock starts.

    Each runs ``warmup`` untimed steps, then ``repeats`` repetitions of
    ``steps`` consecutive steps; repetition ``r`` starts with contestant
    ``r mod len(contestants)``. The step index keeps counting per contestant,
    so all walk through the same batches in the same order. Returns, per
    contestant, the mean step time of every repetition (seconds) and the value
    every step returned.
    """
    count = len(contestants)
    counters = [0] * count
    times = tuple([] for _ in range(count))
    values = tuple([] for _ in range(count))

    def run(k, n, timed):
        step = contestants[k]
        if timed and settle:
            time.sleep(settle)
            run(k, rewarm, timed=False)
        start = time.perf_counter()
        for _ in range(n):
            values[k].append(step(counters[k]))
            counters[k] += 1
        if timed:
            times[k].append((time.perf_counter() - start) / n)

    for k in range(count):
        run(k, warmup, timed=False)
    for r in range(repeats):
        for i in range(count):
            run((r + i) % count, steps, timed=True)
    return times, values
