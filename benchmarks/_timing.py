"""The one timing rule of the benchmarks: the best (minimum) of ``repeat`` wall-clock runs."""
from __future__ import annotations

import time


def best_of(f, repeat, warm_up=False):
    """``(seconds, result)``: the fastest of ``repeat`` calls of ``f()`` and the last call's result.

    ``warm_up=True`` makes one untimed call first (Numba's compile or cache load, first-touch memory).
    """
    if warm_up:
        f()
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = f()
        times.append(time.perf_counter() - start)
    return min(times), result
