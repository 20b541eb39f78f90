"""Benchmark: Winograd F(2x2, 3x3) against the columns path and the micro-kernel, forward, on 3x3 layers.

The three paths of this checkout, in one process, called in turn (minimum of ``--repeats`` after a
warm-up): ``scratchface.kernels.winograd.winograd_output_numba``, the channels-last im2col + GEMM path
(``scratchface.kernels.conv.columns_output``) and the implicit GEMM on the micro-kernel
(``scratchface.kernels.implicit_conv``: what ``conv2d_output_numba`` runs with Winograd switched off, which
is ``scratchface.kernels.tap_skipping`` for 5a at 3x3). The figures behind ``winograd_pays`` (the module
docstring of ``scratchface/kernels/winograd.py``)::

    python benchmarks/bench_winograd.py [--threads 2] [--repeats 7]
"""
from __future__ import annotations

from _timing import best_in_turn, kernel_bench_args  # benchmarks/ is the script's folder

SHAPES = {  # name: (N, C, H, F, padding), 3x3 stride 1, square inputs
    "conv2 at 56x56 (224 input)": (32, 64, 56, 192, 1), "3a 3x3 at 28x28 (224)": (32, 96, 28, 128, 1),
    "conv2 at 24x24 (96 input)": (32, 64, 24, 192, 1), "3a 3x3 at 12x12": (32, 96, 12, 128, 1),
    "3b 3x3 at 12x12": (32, 128, 12, 192, 1), "4a 3x3 at 6x6": (32, 96, 6, 192, 1),
    "4d 3x3 at 6x6": (32, 144, 6, 288, 1), "5a 3x3 at 3x3": (32, 192, 3, 384, 1),
    "R-Net conv2": (256, 28, 11, 48, 0), "O-Net conv2": (256, 32, 23, 64, 0), "O-Net conv3": (256, 64, 10, 64, 0),
}


def main():
    args = kernel_bench_args(__doc__.splitlines()[0])
    import numpy as np

    from scratchface.kernels import conv, tap_skipping, winograd
    from scratchface.kernels._numba import blas_single_threaded

    def columns(x, w, b, pad):
        return conv.columns_output(x, w, b, b, False, (1, 1), (pad,) * 4)

    def implicit(x, w, b, pad):
        shipped = winograd.WINOGRAD_MIN_C
        winograd.WINOGRAD_MIN_C = 1 << 30                          # Winograd off: the micro-kernel
        try:
            return conv.conv2d_output_numba(x, w, b, (1, 1), (pad,) * 4)
        finally:
            winograd.WINOGRAD_MIN_C = shipped

    def wino(x, w, b, pad):
        out = np.empty((x.shape[0], w.shape[0], x.shape[2] + 2 * pad - 2, x.shape[3] + 2 * pad - 2), x.dtype)
        with blas_single_threaded():
            return winograd.winograd_output_numba(x, w, b, None, (pad,) * 4, out)

    rng = np.random.default_rng(0)
    print(f"threads {args.threads}; float32; forward; min of {args.repeats} after a warm-up; "
          "ratio = the faster of the other two / Winograd")
    for name, (n, c, h, f, pad) in SHAPES.items():
        x = rng.standard_normal((n, c, h, h), dtype=np.float32)
        w = rng.standard_normal((f, c, 3, 3), dtype=np.float32)
        b = rng.standard_normal(f, dtype=np.float32)
        fns = (columns, implicit, wino)
        best = dict(zip(fns, best_in_turn([lambda fn=fn: fn(x, w, b, pad) for fn in fns], args.repeats)))
        want = columns(x, w, b, pad)
        err = np.abs(wino(x, w, b, pad) - want).max() / np.abs(want).max()
        o = h + 2 * pad - 2
        shipped = ("Winograd" if winograd.winograd_pays(c, f, 3, 3, (1, 1), o, o, (pad,) * 4) else
                   "tap skipping" if tap_skipping.tap_skipping_pays(n, h, h, 3, 3, (1, 1), (pad,) * 4) else
                   "micro-kernel" if conv._implicit_pays(n * o * o, f) else "columns")
        print(f"{name:28s} columns {best[columns] * 1e3:7.2f} ms   micro-kernel {best[implicit] * 1e3:7.2f} ms   "
              f"Winograd {best[wino] * 1e3:7.2f} ms   ({min(best[columns], best[implicit]) / best[wino]:.2f}x)   "
              f"max diff {err:.1e}   {shipped} as shipped")


if __name__ == "__main__":
    main()
