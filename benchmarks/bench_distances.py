"""Pairwise squared Euclidean distances and top-k search: scratchface vs NumPy BLAS.

Usage::

    python benchmarks/bench_distances.py                 # 10,000 x 10,000 x 128 float32
    python benchmarks/bench_distances.py --n 2000 --repeat 3

The peer is the NumPy expression everyone writes,
``np.maximum(a2[:, None] + b2[None, :] - 2 * a @ b.T, 0)`` (BLAS for the
product, then four full passes over the n x m matrix), timed in the same run.
Top-k is compared with the same expression followed by ``np.argpartition`` and
a sort of the k survivors (which holds the whole matrix); scratchface's
``nearest_neighbors`` holds one block of rows at a time. Numba compile time is
reported apart (the first call with each dtype).
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from scratchface.distances import nearest_neighbors, squared_euclidean_distances


def _best(f, repeat):
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        result = f()
        times.append(time.perf_counter() - t)
    return min(times), result


def numpy_sq_euclidean(a, b):
    a2 = (a * a).sum(1)
    b2 = (b * b).sum(1)
    return np.maximum(a2[:, None] + b2[None, :] - 2 * (a @ b.T), 0)


def numpy_topk(a, b, k):
    d = numpy_sq_euclidean(a, b)
    part = np.argpartition(d, k - 1, axis=1)[:, :k]
    order = np.argsort(np.take_along_axis(d, part, 1), axis=1, kind="stable")
    return np.take_along_axis(part, order, 1)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000, help="rows of each set (default 10000)")
    parser.add_argument("--d", type=int, default=128, help="embedding size (default 128)")
    parser.add_argument("--k", type=int, default=5, help="neighbours for top-k (default 5)")
    parser.add_argument("--repeat", type=int, default=3, help="best of this many runs (default 3)")
    args = parser.parse_args(argv)

    rng = np.random.default_rng(0)
    a = rng.standard_normal((args.n, args.d), dtype=np.float32)
    b = rng.standard_normal((args.n, args.d), dtype=np.float32)

    t = time.perf_counter()
    squared_euclidean_distances(a[:2], b[:3], impl="numba")
    nearest_neighbors(a[:2], b[:3], k=1, impl="numba")
    compile_s = time.perf_counter() - t

    t_np, d_np = _best(lambda: numpy_sq_euclidean(a, b), args.repeat)
    t_sf, d_sf = _best(lambda: squared_euclidean_distances(a, b, impl="numba"), args.repeat)
    scale = float(np.abs(d_np).max())
    err = float(np.abs(d_np - d_sf).max()) / scale
    del d_np, d_sf

    t_np_k, i_np = _best(lambda: numpy_topk(a, b, args.k), args.repeat)
    t_sf_k, (i_sf, _) = _best(lambda: nearest_neighbors(a, b, k=args.k, impl="numba"), args.repeat)
    agree = float(np.mean(i_np == i_sf))

    print(f"pairwise squared Euclidean, {args.n} x {args.n} x {args.d} float32, best of {args.repeat}")
    print(f"Numba compile (first calls, excluded below): {compile_s:.2f} s")
    print(f"{'task':<34}{'NumPy BLAS (s)':>15}{'scratchface (s)':>17}{'speed-up':>10}")
    print(f"{'distance matrix':<34}{t_np:>15.3f}{t_sf:>17.3f}{t_np / t_sf:>9.2f}x")
    print(f"{f'top-{args.k} nearest neighbours':<34}{t_np_k:>15.3f}{t_sf_k:>17.3f}{t_np_k / t_sf_k:>9.2f}x")
    print(f"max |difference| / max distance: {err:.1e}; top-k indices agreeing: {agree:.4%}")
    block_mb = min(1024, args.n) * args.n * 4 / 2**20
    print(f"memory held by top-k: NumPy {args.n * args.n * 4 / 2**20:.0f} MB (whole matrix), "
          f"scratchface {block_mb:.0f} MB (one block of 1024 rows)")


if __name__ == "__main__":
    main()
