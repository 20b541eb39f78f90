"""Numba kernels for the dense layer: its matrix products on Numba's threads, BLAS on one thread each (#16).

``x @ w`` in NumPy runs OpenBLAS on all cores, and OpenBLAS's worker threads then spin for about 0.1 s
waiting for more work (a 512x512 float32 product, then ``time.sleep``: 0.10 s of CPU on the other core
during the sleep, whatever the sleep's length; setting OpenBLAS to one thread afterwards does not stop
them). In a network that is the start of the backward pass, right after the last dense layer's forward
and backward: the convolutions there shared the cores with a spinning thread. Measured (Zen 4, 2 threads,
sixth #16 pass, a timing script): the backward of 5a's 1x1 convolution (32x1024x3x3 -> 384) took 4.0 ms
alone and 7.1 ms right after a ``(32, 1024) @ (1024, 128)`` NumPy product (NN2's last layer), and 4.1 ms
when that product ran with BLAS on one thread; in an NN2 training step at 96x96 its two 1x1 layers of
1024 -> 384 took 13.9 ms in the model against 7.5 ms alone. So the dense layer's products run like the
convolutions': one ``prange`` over blocks of columns, each block one single-threaded BLAS call
(``blas_single_threaded``), every output element from one product (the same bits on any number of
threads).

The validated entry points are :func:`scratchface.layers.dense.dense_forward` and ``dense_backward``,
which import this module lazily (it imports Numba).
"""
from __future__ import annotations

import numba
import numpy as np
from numba import prange

from ._numba import blas_single_threaded, single_thread_below

__all__ = ["dense_grads_numba", "dense_output_numba"]

DENSE_BLOCK = 256          # columns per task (about); an even number of tasks


def _blocks(columns):
    return max(1, min(columns, 2 * max(1, columns // DENSE_BLOCK)))


@numba.njit(cache=True, parallel=True)
def _dense_forward(x, w, blocks, out):
    """``out[:, m0:m1] = x @ w[:, m0:m1]`` per block of output columns (the block of ``w`` copied first:
    BLAS wants it contiguous)."""
    m = w.shape[1]
    for t in prange(blocks):
        m0, m1 = t * m // blocks, (t + 1) * m // blocks
        out[:, m0:m1] = np.dot(x, np.ascontiguousarray(w[:, m0:m1]))


@numba.njit(cache=True, parallel=True)
def _dense_backward(dout, x, w, blocks, dx, dw):
    """Per block of input features ``d0 .. d1``: ``dx[:, d0:d1] = dout @ w[d0:d1].T`` and
    ``dw[d0:d1] = x[:, d0:d1].T @ dout``."""
    d = w.shape[0]
    for t in prange(blocks):
        d0, d1 = t * d // blocks, (t + 1) * d // blocks
        dx[:, d0:d1] = np.dot(dout, w[d0:d1].T)
        dw[d0:d1] = np.dot(np.ascontiguousarray(x[:, d0:d1]).T, dout)


def dense_output_numba(x, w, b):
    """``x @ w (+ b)`` for validated NumPy arrays ``x (N, D)``, ``w (D, M)``, ``b (M,)`` or None."""
    x, w = np.ascontiguousarray(x), np.ascontiguousarray(w)
    out = np.empty((x.shape[0], w.shape[1]), dtype=x.dtype)
    with single_thread_below(x.shape[0] * w.size, DENSE_PARALLEL_MIN), blas_single_threaded():
        _dense_forward(x, w, _blocks(w.shape[1]), out)
    if b is not None:
        out += b
    return out


def dense_grads_numba(dout, x, w):
    """``(dx, dw)`` of ``dense_output_numba`` for a validated ``dout (N, M)``."""
    dout, x, w = np.ascontiguousarray(dout), np.ascontiguousarray(x), np.ascontiguousarray(w)
    dx = np.empty(x.shape, dtype=x.dtype)
    dw = np.empty(w.shape, dtype=x.dtype)
    with single_thread_below(x.shape[0] * w.size, DENSE_PARALLEL_MIN), blas_single_threaded():
        _dense_backward(dout, x, w, _blocks(w.shape[0]), dx, dw)
    return dx, dw


DENSE_PARALLEL_MIN = 1 << 22   # multiply-adds (N * D * M) from which the blocks run on all threads
