"""Benchmark: the layers around the convolutions, the readable NumPy path against the Numba kernels (#16).

Everything in this checkout and one process, each pair called in turn (minimum of ``--repeats`` after a
warm-up), float32, batch 32, NN2's shapes at 96x96:

1. ReLU forward and backward, ``impl='reference'`` (NumPy: the finiteness check, ``maximum``, the mask)
   against ``impl='numba'`` (one parallel pass);
2. LRN forward and backward on NN2's first LRN (32x64x24x24) on one thread and on all;
3. the spinning BLAS thread: 5a's 1x1 backward (32x1024x3x3 -> 384) timed alone, right after NN2's last
   layer ``(32, 1024) @ (1024, 128)`` by ``dense_forward(impl='reference')`` (NumPy's BLAS on all
   threads) and right after ``impl='numba'``; and the process's CPU time during a 0.3 s sleep after each.

The figures behind the docstrings of ``scratchface/kernels/activations.py``, ``normalization.py`` and
``dense.py``::

    python benchmarks/bench_layers.py [--threads 2] [--repeats 9]
"""
from __future__ import annotations

import resource
import time

from _timing import best_in_turn, kernel_bench_args  # benchmarks/ is the script's folder


def _cpu_seconds():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main():
    args = kernel_bench_args(__doc__.splitlines()[0], repeats=9)
    import numba
    import numpy as np

    from scratchface.kernels.conv import conv2d_grads_numba
    from scratchface.layers.activations import relu_backward, relu_forward
    from scratchface.layers.dense import dense_forward
    from scratchface.layers.normalization import lrn_backward, lrn_forward

    rng = np.random.default_rng(0)
    print(f"threads {args.threads}; float32; min of {args.repeats}, called in turn")
    print("\n1. ReLU, reference / numba time (> 1: the kernel is faster)")
    for shape in [(32, 64, 48, 48), (32, 192, 24, 24), (32, 128, 12, 12), (32, 256, 6, 6)]:
        x = rng.standard_normal(shape, dtype=np.float32)
        dout = rng.standard_normal(shape, dtype=np.float32)
        _, ref_cache = relu_forward(x, impl="reference")
        _, fast_cache = relu_forward(x, impl="numba")
        rf, rb, nf, nb = best_in_turn([lambda: relu_forward(x, impl="reference"),
                                       lambda: relu_backward(dout, ref_cache, impl="reference"),
                                       lambda: relu_forward(x, impl="numba"),
                                       lambda: relu_backward(dout, fast_cache, impl="numba")], args.repeats)
        print(f"{str(shape):18s} forward {rf * 1e3:6.2f} -> {nf * 1e3:6.2f} ms ({rf / nf:4.2f}x)   "
              f"backward {rb * 1e3:6.2f} -> {nb * 1e3:6.2f} ms ({rb / nb:4.2f}x)")

    print("\n2. LRN (size 5) on 32x64x24x24, one thread / all threads")
    x = rng.standard_normal((32, 64, 24, 24), dtype=np.float32)
    out, cache = lrn_forward(x, size=5)
    times = {}
    for threads in (1, args.threads):
        numba.set_num_threads(threads)
        times[threads] = best_in_turn([lambda: lrn_forward(x, size=5), lambda: lrn_backward(out, cache)],
                                      args.repeats)
    numba.set_num_threads(args.threads)
    (f1, b1), (fn, bn) = times[1], times[args.threads]
    print(f"forward {f1 * 1e3:6.2f} -> {fn * 1e3:6.2f} ms   backward {b1 * 1e3:6.2f} -> {bn * 1e3:6.2f} ms")

    print("\n3. 5a 1x1 backward (32x1024x3x3 -> 384) and the dense layer before it")
    x5 = rng.standard_normal((32, 1024, 3, 3), dtype=np.float32)
    w5 = rng.standard_normal((384, 1024, 1, 1), dtype=np.float32)
    d5 = rng.standard_normal((32, 384, 3, 3), dtype=np.float32)
    xd = rng.standard_normal((32, 1024), dtype=np.float32)
    wd = rng.standard_normal((1024, 128), dtype=np.float32)

    def after(impl):
        def run():
            if impl is not None:
                dense_forward(xd, wd, impl=impl)
            conv2d_grads_numba(d5, x5, w5, True, (1, 1), (0, 0, 0, 0))
        return run

    for label, impl in (("alone", None), ("after dense_forward(impl='reference')", "reference"),
                        ("after dense_forward(impl='numba')", "numba")):
        time.sleep(0.3)                                     # no worker left spinning from the row before
        best = best_in_turn([after(impl)], args.repeats)[0]
        dense = best_in_turn([lambda: dense_forward(xd, wd, impl=impl)], args.repeats)[0] if impl else 0.0
        if impl:
            dense_forward(xd, wd, impl=impl)
        before = _cpu_seconds()
        time.sleep(0.3)
        spun = _cpu_seconds() - before
        print(f"{label:40s} conv backward {(best - dense) * 1e3:6.2f} ms   CPU during a 0.3 s sleep after it "
              f"{spun:.2f} s")


if __name__ == "__main__":
    main()
