"""Benchmark: the micro-kernel against OpenBLAS, and the implicit-GEMM convolution against the columns path.

Two tables, everything in this checkout and in one process (each pair called in turn, minimum of
``--repeats`` after a warm-up), float32:

1. one thread: ``C = A @ B`` through ``scratchface.kernels.microkernel.tile_fma`` (a plain Numba loop over
   tiles of ``TILE_ROWS`` x ``tile_width`` (12 x 32 with AVX-512, 6 x 16 without), ``B`` packed in panels of
   ``tile_width`` columns as the convolution packs its weights, the last panel filled with zeros) against
   NumPy's ``np.dot`` (OpenBLAS), on the matrix shapes of NN2's and MTCNN's layers (rows = output pixels
   of a chunk, reduction = ``KH*KW*C``, columns = filters);
2. ``--threads`` threads, per layer: the forward by ``implicit_conv_output`` and by the channels-last
   columns + BLAS path (``columns_output``), and the backward by the micro-kernel (``dW`` over the
   patches, or over the taps inside the input where ``scratchface.kernels.tap_skipping`` takes it; ``dx``
   as a forward convolution, by the forward's routes, Winograd included; strided layers: ``dW`` over the
   strided patches, ``dx`` by tiles of ``dout_t @ W`` added onto the patches; ``DX_BY_FORWARD_MIN_C``,
   ``DX_MAX_GROWTH`` and ``POINTWISE_IMPLICIT_MIN_PIXELS`` lifted) and by the columns (``_fused_backward``), the 1x1 layers'
   per-image and channel-major routes held off (``POINTWISE_MIN_IMAGES`` lifted: the last column says
   what is shipped). The figures behind the routing in ``scratchface/kernels/conv.py``::

    python benchmarks/bench_implicit_conv.py [--threads 2] [--repeats 7]
"""
from __future__ import annotations

from _timing import best_in_turn, kernel_bench_args  # benchmarks/ is the script's folder

GEMMS = {  # name: (M, K, N)
    "3a 5x5 (16 ch)": (576, 400, 32), "3b 5x5 (32 ch)": (576, 800, 64), "3a 3x3 (96 ch)": (576, 864, 128),
    "5a 3x3 (192 ch)": (288, 1728, 384), "O-Net conv3 (64 ch)": (576, 576, 64), "R-Net conv2 (28 ch)": (576, 252, 48),
}
LAYERS = {  # name: (N, C, H, F, K, stride, padding), square
    "conv1 7x7/2": (32, 3, 96, 64, 7, 2, 3), "3a 3x3": (32, 96, 12, 128, 3, 1, 1),
    "3a 5x5": (32, 16, 12, 32, 5, 1, 2), "3b 5x5": (32, 32, 12, 64, 5, 1, 2),
    "3c 3x3/2": (32, 128, 12, 256, 3, 2, 1), "4a 1x1": (32, 640, 6, 256, 1, 1, 0),
    "4a 3x3": (32, 96, 6, 192, 3, 1, 1), "4d 3x3": (32, 144, 6, 288, 3, 1, 1),
    "4e 5x5/2": (32, 64, 6, 128, 5, 2, 2), "5a 1x1": (32, 1024, 3, 384, 1, 1, 0),
    "5a 3x3": (32, 192, 3, 384, 3, 1, 1), "5a 5x5": (32, 48, 3, 128, 5, 1, 2),
    "R-Net conv1": (256, 3, 24, 28, 3, 1, 0), "R-Net conv2": (256, 28, 11, 48, 3, 1, 0),
    "O-Net conv2": (256, 32, 23, 64, 3, 1, 0), "O-Net conv3": (256, 64, 10, 64, 3, 1, 0),
    "P-Net conv2 (wide)": (1, 10, 149, 16, 3, 1, 0), "P-Net conv3 (wide)": (1, 16, 147, 32, 3, 1, 0),
}


def main():
    args = kernel_bench_args(__doc__.splitlines()[0])
    import numba
    import numpy as np
    from threadpoolctl import threadpool_limits

    from scratchface.kernels import conv, implicit_conv, layout, microkernel, tap_skipping
    from scratchface.kernels._numba import blas_single_threaded

    @numba.njit(cache=True)
    def tiled_gemm(a, b_pack, out):
        """``out (M, N) = a (M, K) @ B``, ``B`` packed as ``(N / width, K, width)``; M a multiple of TILE_ROWS."""
        m, k = a.shape
        rows, width = microkernel.TILE_ROWS, b_pack.shape[2]
        a_flat, b_flat = a.reshape(-1), b_pack.reshape(-1)
        acc = np.empty((rows, width), dtype=a.dtype)
        offsets = np.empty(rows, dtype=np.int64)
        for s in range(b_pack.shape[0]):
            for r0 in range(0, m, rows):
                for r in range(rows):
                    offsets[r] = (r0 + r) * k
                acc[:] = 0
                microkernel.tile_fma(a_flat, offsets, 0, b_flat, s * k * width, width, k, 1, acc)
                out[r0:r0 + rows, s * width:(s + 1) * width] = acc

    rng = np.random.default_rng(0)
    print(f"1. one thread, float32, C = A @ B, min of {args.repeats}: micro-kernel against np.dot (OpenBLAS)")
    print(f"{'shape':22s} {'M x K x N':>18s} | {'tile_fma':>9s} {'GF/s':>5s} | {'np.dot':>9s} {'GF/s':>5s} | ratio")
    with threadpool_limits(1, user_api="blas"), blas_single_threaded():
        numba.set_num_threads(1)
        np.dot(np.ones((512, 16), np.float32), np.ones((16, 512), np.float32))   # OpenBLAS out of its slow start
        # (NumPy's own OpenBLAS, on this thread: see scratchface.kernels._numba._warm_sgemm_on_every_thread)
        for name, (m, k, n) in GEMMS.items():
            a = rng.standard_normal((m, k), dtype=np.float32)
            b = rng.standard_normal((k, n), dtype=np.float32)
            width = microkernel.tile_width(b)
            panels = -(-n // width)
            wide = np.zeros((k, panels * width), np.float32)
            wide[:, :n] = b
            pack = np.ascontiguousarray(wide.reshape(k, panels, width).transpose(1, 0, 2))
            out = np.empty((m, panels * width), np.float32)
            tiled_gemm(a, pack, out)
            assert np.allclose(out[:, :n], a @ b, rtol=1e-4, atol=1e-3)
            t_mk, t_blas = best_in_turn([lambda: tiled_gemm(a, pack, out), lambda: np.dot(a, b)], args.repeats)
            flop = 2 * m * k * n / 1e9
            print(f"{name:22s} {f'{m} x {k} x {n}':>18s} | {t_mk * 1e3:7.2f}ms {flop / t_mk:5.1f} | "
                  f"{t_blas * 1e3:7.2f}ms {flop / t_blas:5.1f} | {t_blas / t_mk:5.2f}x")
        numba.set_num_threads(args.threads)

    print(f"\n2. {args.threads} threads, float32, min of {args.repeats}: columns + BLAS time / micro-kernel time "
          "(> 1: the micro-kernel is faster)")
    print(f"{'layer':20s} | {'fwd columns':>11s} {'implicit':>9s} {'ratio':>6s} | {'bwd columns':>11s} "
          f"{'implicit':>9s} {'ratio':>6s}")
    for name, (n, c, h, f, k, s, p) in LAYERS.items():
        x = rng.standard_normal((n, c, h, h), dtype=np.float32)
        w = rng.standard_normal((f, c, k, k), dtype=np.float32)
        b = np.zeros(f, np.float32)
        o = (h + 2 * p - k) // s + 1
        dout = rng.standard_normal((n, f, o, o), dtype=np.float32)
        pad = (p,) * 4

        def columns_forward():
            return conv.columns_output(x, w, b, b, False, (s, s), pad)

        def implicit_forward():
            out = np.empty((n, f, o, o), np.float32)
            xh = layout.padded_channels_last(x, pad)
            implicit_conv.implicit_conv_output(xh, implicit_conv.packed_weights(w), b, b,
                                               False, k, k, s, s, o, o, p, p, implicit_conv.forward_chunk(n * o * o),
                                               out)
            return out

        def backward(min_c, max_growth, min_pixels):
            def run():
                names = ("DX_BY_FORWARD_MIN_C", "DX_MAX_GROWTH", "POINTWISE_IMPLICIT_MIN_PIXELS",
                         "POINTWISE_MIN_IMAGES")
                shipped = [getattr(conv, name) for name in names]
                for name, value in zip(names, (min_c, max_growth, min_pixels, 1 << 30)):
                    setattr(conv, name, value)
                try:
                    return conv.conv2d_grads_numba(dout, x, w, True, (s, s), pad)
                finally:
                    for name, value in zip(names, shipped):
                        setattr(conv, name, value)
            return run

        fc, fi, bc, bi = best_in_turn([columns_forward, implicit_forward, backward(1 << 30, 0, 1 << 30),
                                       backward(1, 1e9, 1)], args.repeats)
        taps = tap_skipping.tap_skipping_pays(n, h, h, k, k, (s, s), (p,) * 4, weight_grad=True)
        routed = conv._implicit_grads_pay(c, f, k, k, (s, s), h * h, o * o, n, (k - 1 - p,) * 4, taps)
        pointwise = conv._pointwise_grads_path(n, o * o) if k == 1 else None
        strided = conv._strided_grads_pay(c, f, (s, s), n, o * o)
        implicit_bwd = (("  strided tiles as shipped" if strided else "  columns as shipped") if s > 1 else
                        f"  {pointwise} as shipped" if pointwise else
                        "  micro-kernel, taps skipped, as shipped" if routed and taps else
                        "  micro-kernel as shipped" if routed else "  columns as shipped")
        print(f"{name:20s} | {fc * 1e3:9.2f}ms {fi * 1e3:7.2f}ms {fc / fi:5.2f}x | {bc * 1e3:9.2f}ms "
              f"{bi * 1e3:7.2f}ms {bc / bi:5.2f}x{implicit_bwd}")


if __name__ == "__main__":
    main()
