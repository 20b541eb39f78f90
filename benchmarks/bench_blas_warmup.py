"""Benchmark: OpenBLAS's GEMM on a fresh thread before and after one small-K, large-M-and-N product.

The figures of ``scratchface/kernels/_numba.py`` (``_warm_sgemm_on_every_thread``). Each dtype runs in a
fresh process: NN2 conv2's chunk product ``(432, 576) @ (576, 192)`` on one thread (min of ``--repeats``),
then one ``(512, 16) @ (16, 512)`` float32 product (``WARM_SGEMM``), then the chunk product again::

    python benchmarks/bench_blas_warmup.py [--repeats 10]
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time


def one(dtype_name, repeats):
    import numpy as np
    dtype = np.dtype(dtype_name)
    rng = np.random.default_rng(0)
    cols = rng.standard_normal((432, 576)).astype(dtype)
    wmat = rng.standard_normal((576, 192)).astype(dtype)
    out = np.empty((432, 192), dtype)

    def best():
        np.matmul(cols, wmat, out=out)
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            np.matmul(cols, wmat, out=out)
            times.append(time.perf_counter() - t0)
        return min(times)

    before = best()
    np.ones((512, 16), np.float32) @ np.ones((16, 512), np.float32)
    after = best()
    print(f"{dtype.name}: (432, 576) @ (576, 192), one thread: {before * 1e3:.2f} ms on a fresh thread, "
          f"{after * 1e3:.2f} ms after one (512, 16) @ (16, 512) float32 product ({before / after:.2f}x)")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        one(args.one, args.repeats)
        return
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    for dtype_name in ("float32", "float64"):
        subprocess.run([sys.executable, __file__, "--one", dtype_name, "--repeats", str(args.repeats)],
                       env=env, check=True)


if __name__ == "__main__":
    main()
