"""Timing windows of steps (inside a contestant's own process), and the in-process race (a diagnostic)."""

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


def windows(step, spec):
    """Run ``spec["warmup"] + spec["windows"]`` windows of ``spec["steps"]`` calls of ``step(i)``.

    Returns the clock at every window boundary and the values the first
    window's steps returned. ``i`` counts on across windows.
    """
    marks, values = [time.perf_counter()], []
    i = 0
    for w in range(spec["warmup"] + spec["windows"]):
        for _ in range(spec["steps"]):
            value = step(i)
            if w == 0:
                values.append(value)
            i += 1
        marks.append(time.perf_counter())
    return marks, values
