"""Numba kernels for PReLU's forward pass and ReLU's forward and backward passes (NumPy arrays only).

NumPy's ``where(x > 0, x, alpha * x)`` makes three passes over the array and
two temporaries as large as it (the mask and ``alpha * x``); MTCNN applies it
after every convolution (its share of ``detect_faces``: docs/results.md, #16).
This kernel makes one pass, parallel over the ``N * C`` planes, and writes
each output element once.

ReLU follows every convolution of FaceNet's NN2. Its NumPy forward reads ``x`` three times (the
finiteness check, ``maximum``, the mask ``x > 0``) and its backward reads ``dout`` twice (the check,
the product), each pass on one thread; the kernels below make one pass each, in parallel blocks, and
count non-finite values in the same pass (the layer raises the same ``ValueError`` as the check).
Sixth #16 pass, Zen 4, 2 threads, float32, ``relu_forward`` / ``relu_backward`` with ``impl='reference'``
against ``'numba'`` in turn (``python benchmarks/bench_layers.py``, ``docs/benchmark_tables/bench_layers.txt``):
32x64x48x48 (after NN2's conv1 at 96x96) forward 3.68 -> 1.38 ms, backward 3.34 -> 1.19 ms; 32x192x24x24
2.68 -> 1.12 and 2.44 -> 1.08 ms; 32x256x6x6 1.4x / 1.0x (too small to gain); in an NN2 training step at
96x96 (batch 32) the ReLU modules' time went from 39 to 24 ms (module timers, one run each: a timing script).
Written first as one loop over the whole arrays inside the ``prange``, it did not vectorise and was
slower than NumPy (5.7 against 4.2 ms forward); each task now runs a plain loop over its block's slices.

The validated entry points are :func:`scratchface.layers.activations.prelu_forward`, ``relu_forward``
and ``relu_backward``, which import this module lazily (it imports Numba).
"""
from __future__ import annotations

import numba
import numpy as np
from numba import prange

from ._numba import MEMORY_BOUND_WORK, single_thread_below

__all__ = ["prelu", "prelu_output_numba", "relu_grad_numba", "relu_output_numba"]


@numba.njit(cache=True, inline="always")
def prelu(v, slope):
    """``v if v > 0 else slope * v``: PReLU of one value (also the convolutions' epilogue)."""
    return v if v > 0 else slope * v


@numba.njit(cache=True, parallel=True)
def _prelu_forward(x, alpha, out):
    """``out[b, c, p] = x if x > 0 else alpha[c] * x`` on (N, C, P) arrays."""
    n, c, npix = x.shape
    for t in prange(n * c):
        b = t // c
        ch = t % c
        slope = alpha[ch]
        src = x[b, ch]
        dst = out[b, ch]
        for p in range(npix):
            v = src[p]
            dst[p] = prelu(v, slope)


def prelu_output_numba(x, alpha):
    """PReLU of a validated NumPy array ``x`` (N, C, ...) with slopes ``alpha`` (C,), same dtype."""
    x = np.ascontiguousarray(x)
    out = np.empty_like(x)
    shape3 = (x.shape[0], x.shape[1], int(np.prod(x.shape[2:])))
    with single_thread_below(x.size):
        _prelu_forward(x.reshape(shape3), np.ascontiguousarray(alpha), out.reshape(shape3))
    return out


RELU_BLOCK = 1 << 16          # elements per task of the ReLU kernels


@numba.njit(cache=True, fastmath={"reassoc"})
def _relu_block(x, out, positive):
    """``out = max(x, 0)``, ``positive = x > 0`` on one contiguous block; returns ``sum(x * 0)``, which is
    NaN if any ``x`` is NaN or infinite (``reassoc`` lets LLVM vectorise the sum and keeps NaN)."""
    acc = x.dtype.type(0)
    for i in range(x.size):
        v = x[i]
        out[i] = v if v > 0 else 0
        positive[i] = v > 0
        acc += v * 0
    return acc


@numba.njit(cache=True, fastmath={"reassoc"})
def _relu_grad_block(dout, positive, dx):
    """``dx = dout * positive`` on one contiguous block; returns ``sum(dout * 0)`` (NaN if any is not finite)."""
    acc = dout.dtype.type(0)
    for i in range(dout.size):
        v = dout[i]
        dx[i] = v * positive[i]
        acc += v * 0
    return acc


@numba.njit(cache=True, parallel=True)
def _relu_blocks(src, positive, dst, grad):
    """Blocks of ``RELU_BLOCK`` flat elements in parallel: ``_relu_block(x=src, out=dst, positive)`` or, with
    ``grad``, ``_relu_grad_block(dout=src, positive, dx=dst)``; returns the blocks' finiteness sums. (The
    loop over one block's slices vectorises; indexing the whole arrays inside the ``prange`` did not.)"""
    check = 0.0
    for t in prange((src.size + RELU_BLOCK - 1) // RELU_BLOCK):
        lo = t * RELU_BLOCK
        hi = min(src.size, lo + RELU_BLOCK)
        if grad:
            check += _relu_grad_block(src[lo:hi], positive[lo:hi], dst[lo:hi])
        else:
            check += _relu_block(src[lo:hi], dst[lo:hi], positive[lo:hi])
    return check


def relu_output_numba(x):
    """``(out, positive, nonfinite)``: ReLU of a NumPy float array, the mask ``x > 0`` and whether any
    value of ``x`` is NaN or infinite (the caller raises), in one parallel pass."""
    x = np.ascontiguousarray(x)
    out = np.empty_like(x)
    positive = np.empty(x.shape, dtype=np.bool_)
    with single_thread_below(x.size, MEMORY_BOUND_WORK):
        check = _relu_blocks(x.reshape(-1), positive.reshape(-1), out.reshape(-1), False)
    return out, positive, not np.isfinite(check)


def relu_grad_numba(dout, positive):
    """``(dx, nonfinite)``: ``dout * positive`` (same dtype as ``dout``) and whether any value of ``dout``
    is NaN or infinite, in one parallel pass."""
    dout = np.ascontiguousarray(dout)
    dx = np.empty_like(dout)
    with single_thread_below(dout.size, MEMORY_BOUND_WORK):
        check = _relu_blocks(dout.reshape(-1), np.ascontiguousarray(positive).reshape(-1), dx.reshape(-1), True)
    return dx, not np.isfinite(check)
