"""PReLU on the GPU: the elementwise forward / backward kernels, the per-channel slope gradient, host wrappers.

``x`` is viewed as ``(N, C, S)`` with ``S`` the product of the trailing axes
(``S = H*W`` for images, 1 for ``(N, C)`` features), flattened.

.. math:: \\mathrm{out} = \\begin{cases} x & x > 0 \\\\ \\alpha_c x & x \\le 0 \\end{cases},
          \\qquad \\frac{\\partial L}{\\partial \\alpha_c} = \\sum_{n,s} \\mathrm{dout}\\, x\\, [x \\le 0]

The slope gradient is a reduction over ``N*S`` elements per channel: one block
per channel; each thread adds a strided share in float64, then the block adds
its threads' partial sums pairwise in shared memory (a tree reduction,
``log2(threads)`` steps). Fixed order, so deterministic.

Host wrappers (CuPy arrays): :func:`prelu_output_cuda` and :func:`prelu_grads_cuda`, the
CuPy path of :func:`scratchface.layers.activations.prelu_forward` / ``prelu_backward``.
"""
from __future__ import annotations

import numpy as np
from numba import cuda, float64

from ..._validation import check_array
from ._launch import array_module, blocks_for, check_same_dtype, launch

__all__ = ["prelu_output_kernel", "prelu_dx_kernel", "prelu_dalpha_kernel", "prelu_output_cuda",
           "prelu_grads_cuda", "REDUCE_THREADS"]

REDUCE_THREADS = 256  # threads per block of the reduction (a power of two)


@cuda.jit(cache=True)
def prelu_output_kernel(x, alpha, channels, inner, out):
    """Flat ``x`` and ``out`` of ``N*C*S`` elements; one thread per element."""
    idx = cuda.grid(1)
    if idx >= x.shape[0]:
        return
    v = x[idx]
    out[idx] = v if v > 0 else alpha[(idx // inner) % channels] * v


@cuda.jit(cache=True)
def prelu_dx_kernel(dout, x, alpha, channels, inner, dx):
    """``dx = dout * (1 if x > 0 else alpha_c)``, flat; one thread per element."""
    idx = cuda.grid(1)
    if idx >= x.shape[0]:
        return
    g = dout[idx]
    dx[idx] = g if x[idx] > 0 else alpha[(idx // inner) % channels] * g


@cuda.jit(cache=True)
def prelu_dalpha_kernel(dout, x, batch, channels, inner, dalpha):
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


# ----------------------------------------------------------------------------- host wrappers

def _prelu_shapes(x, alpha):
    check_array(x, "x", dtype_kind="f")
    check_array(alpha, "alpha", ndim=1, dtype_kind="f")
    check_same_dtype(x, alpha, "x", "alpha")
    if x.ndim < 2 or alpha.shape[0] != x.shape[1]:
        raise ValueError(f"alpha must have shape (C,) with C = x.shape[1]; got x {tuple(x.shape)}, "
                         f"alpha {tuple(alpha.shape)}")
    inner = int(np.prod(x.shape[2:], dtype=np.int64))
    return x.shape[0], x.shape[1], inner


def prelu_output_cuda(x, alpha):
    """PReLU on the GPU: ``x`` where ``x > 0``, else ``alpha[c] * x``; ``x`` of shape (N, C, ...)."""
    _, channels, inner = _prelu_shapes(x, alpha)
    xp = array_module(x, alpha)
    flat = xp.ascontiguousarray(x).reshape(-1)
    out = xp.empty_like(flat)
    launch(prelu_output_kernel, blocks_for(flat.size), None, flat, alpha, channels, inner, out)
    return out.reshape(x.shape)


def prelu_grads_cuda(dout, x, alpha):
    """Gradients ``(dx, dalpha)`` of :func:`prelu_output_cuda`; ``dalpha`` summed in float64."""
    batch, channels, inner = _prelu_shapes(x, alpha)
    check_array(dout, "dout", dtype_kind="f")
    if tuple(dout.shape) != tuple(x.shape):
        raise ValueError(f"dout must have the shape of x {tuple(x.shape)}, got {tuple(dout.shape)}")
    xp = array_module(dout, x, alpha)
    flat_x = xp.ascontiguousarray(x).reshape(-1)
    flat_d = xp.ascontiguousarray(dout, dtype=x.dtype).reshape(-1)
    dx = xp.empty_like(flat_x)
    launch(prelu_dx_kernel, blocks_for(flat_x.size), None, flat_d, flat_x, alpha, channels, inner, dx)
    dalpha = xp.empty(channels, dtype=np.float64)
    launch(prelu_dalpha_kernel, channels, REDUCE_THREADS, flat_d, flat_x, batch, channels, inner, dalpha)
    return dx.reshape(x.shape), dalpha.astype(x.dtype)
