"""PReLU as CUDA kernels: the elementwise forward / backward and the per-channel slope gradient.

``x`` is viewed as ``(N, C, S)`` with ``S`` the product of the trailing axes
(``S = H*W`` for images, 1 for ``(N, C)`` features), flattened.

.. math:: \\mathrm{out} = \\begin{cases} x & x > 0 \\\\ \\alpha_c x & x \\le 0 \\end{cases},
          \\qquad \\frac{\\partial L}{\\partial \\alpha_c} = \\sum_{n,s} \\mathrm{dout}\\, x\\, [x \\le 0]

The slope gradient is a reduction over ``N*S`` elements per channel: one block
per channel; each thread adds a strided share in float64, then the block adds
its threads' partial sums pairwise in shared memory (a tree reduction,
``log2(threads)`` steps). Fixed order, so deterministic.
"""
from __future__ import annotations

from numba import cuda, float64

__all__ = ["prelu_forward", "prelu_backward_x", "prelu_backward_alpha", "REDUCE_THREADS"]

REDUCE_THREADS = 256  # threads per block of the reduction (a power of two)


@cuda.jit(cache=True)
def prelu_forward(x, alpha, channels, inner, out):
    """Flat ``x`` and ``out`` of ``N*C*S`` elements; one thread per element."""
    idx = cuda.grid(1)
    if idx >= x.shape[0]:
        return
    v = x[idx]
    out[idx] = v if v > 0 else alpha[(idx // inner) % channels] * v


@cuda.jit(cache=True)
def prelu_backward_x(dout, x, alpha, channels, inner, dx):
    """``dx = dout * (1 if x > 0 else alpha_c)``, flat; one thread per element."""
    idx = cuda.grid(1)
    if idx >= x.shape[0]:
        return
    g = dout[idx]
    dx[idx] = g if x[idx] > 0 else alpha[(idx // inner) % channels] * g


@cuda.jit(cache=True)
def prelu_backward_alpha(dout, x, batch, channels, inner, dalpha):
    """``dalpha[c]``; launch with one block of ``REDUCE_THREADS`` threads per channel."""
    partial = cuda.shared.array(REDUCE_THREADS, dtype=float64)
    c = cuda.blockIdx.x
    t = cuda.threadIdx.x
    acc = 0.0
    for k in range(t, batch * inner, REDUCE_THREADS):   # element k = (n, s) of channel c
        n = k // inner
        s = k - n * inner
        idx = (n * channels + c) * inner + s
        v = x[idx]
        if v <= 0:
            acc += dout[idx] * v
    partial[t] = acc
    cuda.syncthreads()
    half = REDUCE_THREADS // 2
    while half > 0:                                    # tree: add the upper half onto the lower
        if t < half:
            partial[t] += partial[t + half]
        cuda.syncthreads()
        half //= 2
    if t == 0:
        dalpha[c] = partial[0]
