"""Timing two contestants alternately, repetition by repetition."""

import time


def race(first, second, warmup, repeats, steps, settle=0.0, rewarm=0):
    """Time ``first(i)`` against ``second(i)``, alternating which goes first each repetition.

    Before each timed repetition the process sleeps ``settle`` seconds: after
    work, OpenBLAS and OpenMP worker threads keep spinning for a while, and
    they would otherwise take CPU from whichever library runs next. The sleep
    leaves the contestant cold (its worker threads parked, its arrays out of
    cache), which a training epoch of consecutive steps never is, so
    ``rewarm`` untimed steps follow it before the clock starts.

    Both run ``warmup`` untimed steps, then ``repeats`` repetitions of ``steps``
    consecutive steps each. The step index keeps counting for each contestant,
    so both walk through the same batches in the same order. Returns, per
    contestant, the mean step time of every repetition (seconds) and the value
    every step returned.
    """
    contestants = (first, second)
    counters = [0, 0]
    times = ([], [])
    values = ([], [])

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

    for k in (0, 1):
        run(k, warmup, timed=False)
    for r in range(repeats):
        for k in ((0, 1) if r % 2 == 0 else (1, 0)):
            run(k, steps, timed=True)
    return times, values
