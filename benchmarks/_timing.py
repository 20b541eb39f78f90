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


def best_in_turn(fns, repeat):
    """The fastest of ``repeat`` calls of each function, the functions called in turn (one warm-up round
    first): versions of one kernel compared in one process see the same machine."""
    best = [float("inf")] * len(fns)
    for round_ in range(repeat + 1):
        for i, f in enumerate(fns):
            start = time.perf_counter()
            f()
            if round_:
                best[i] = min(best[i], time.perf_counter() - start)
    return best


def kernel_bench_args(description, repeats=7):
    """``--threads`` / ``--repeats`` of a kernel benchmark, the threads set for Numba and BLAS before they
    start, and this checkout first on the import path."""
    import argparse  # noqa: PLC0415
    import os  # noqa: PLC0415
    import sys  # noqa: PLC0415
    from pathlib import Path  # noqa: PLC0415
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=repeats)
    args = parser.parse_args()
    for var in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(args.threads)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    return args
