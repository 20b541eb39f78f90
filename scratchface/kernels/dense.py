"""Numba kernels for the dense layer: its matrix products on Numba's threads, BLAS on one thread each (#16).

``x @ w`` in NumPy runs OpenBLAS on all cores, and OpenBLAS's worker threads then spin for about 0.1 s
waiting for more work (a 512x512 float32 product, then ``time.sleep``: 0.10 s of CPU on the other core
during the sleep, whatever the sleep's length; setting OpenBLAS to one thread afterwards does not stop
them). In a network that is the start of the backward pass, right after the last dense layer's forward
and backward: the convolutions there shared the cores with a spinning thread. Measured (Zen 4, 2 threads,
sixth #16 pass, ``python benchmarks/bench_layers.py``): the backward of 5a's 1x1 convolution
(32x1024x3x3 -> 384) took 3.83 ms alone, 7.35 ms right after NN2's last layer ``(32, 1024) @ (1024, 128)``
by ``dense_forward(impl='reference')`` and 4.42 ms after ``impl='numba'``; the process used 0.11 s of CPU
during a 0.3 s sleep after the first, none after the second. In an NN2 training step at 96x96 the two 1x1
layers of 1024 -> 384 had taken 13.9 ms in the model against 7.5 ms alone (a timing script). So the dense layer's products run like the
convolutions': one ``prange`` over blocks of rows (many inputs: MTCNN's R-Net / O-Net on their crops) or
of columns (a batch narrower than the layer: NN2's 32 x 128), each block one single-threaded BLAS call
(``blas_single_threaded``), every output element from one product (the same bits on any number of
threads). Blocks of columns on R-Net's crops (tall ``x``, 576 -> 128) made ``detect_faces``'s R-Net
stage 1.3x-2.3x slower (``benchmarks/bench_mtcnn.py``): each block packed all of ``x`` again.

The validated entry points are :func:`scratchface.layers.dense.dense_forward` and ``dense_backward``,
which import this module lazily (it imports Numba).
"""
from __future__ import annotations

import numba
import numpy as np
from numba import prange

from ._numba import blas_single_threaded, even_blocks, single_thread_below

__all__ = ["dense_grads_numba", "dense_output_numba"]

DENSE_BLOCK = 256              # columns per task (about)
DENSE_ROWS = 4096              # rows per task (about): as few BLAS calls as the threads need
DENSE_PARALLEL_MIN = 1 << 22   # multiply-adds (N * D * M) from which the blocks run on all threads


@numba.njit(cache=True, parallel=True)
def _dense_forward(x, w, blocks, by_rows, out):
    """``out = x @ w`` in blocks: of rows of ``x`` (``by_rows``: ``out[n0:n1] = x[n0:n1] @ w``, nothing
    copied) or of output columns (``out[:, m0:m1] = x @ w[:, m0:m1]``, the block of ``w`` copied first:
    BLAS wants it contiguous)."""
    n, m = out.shape
    for t in prange(blocks):
        if by_rows:
            n0, n1 = t * n // blocks, (t + 1) * n // blocks
            np.dot(x[n0:n1], w, out[n0:n1])
        else:
            m0, m1 = t * m // blocks, (t + 1) * m // blocks
            out[:, m0:m1] = np.dot(x, np.ascontiguousarray(w[:, m0:m1]))


@numba.njit(cache=True, parallel=True)
def _dense_backward(dout, x, w, blocks, row_blocks, dx, dw):
    """``dw[d0:d1] = x[:, d0:d1].T @ dout`` per block of input features, then ``dx[n0:n1] = dout[n0:n1] @ w.T``
    per block of rows."""
    d, n = w.shape[0], x.shape[0]
    for t in prange(blocks):
        d0, d1 = t * d // blocks, (t + 1) * d // blocks
        dw[d0:d1] = np.dot(np.ascontiguousarray(x[:, d0:d1]).T, dout)
    for t in prange(row_blocks):
        n0, n1 = t * n // row_blocks, (t + 1) * n // row_blocks
        np.dot(dout[n0:n1], w.T, dx[n0:n1])


def dense_output_numba(x, w, b):
    """``x @ w (+ b)`` for validated NumPy arrays ``x (N, D)``, ``w (D, M)``, ``b (M,)`` or None."""
    x, w = np.ascontiguousarray(x), np.ascontiguousarray(w)
    out = np.empty((x.shape[0], w.shape[1]), dtype=x.dtype)
    with single_thread_below(x.shape[0] * w.size, DENSE_PARALLEL_MIN), blas_single_threaded():
        by_rows = x.shape[0] >= w.shape[1]                  # tall x (MTCNN's crops): blocks of rows
        blocks = even_blocks(x.shape[0], DENSE_ROWS) if by_rows else even_blocks(w.shape[1], DENSE_BLOCK)
        _dense_forward(x, w, blocks, by_rows, out)
    if b is not None:
        out += b
    return out


def dense_grads_numba(dout, x, w):
    """``(dx, dw)`` of ``dense_output_numba`` for a validated ``dout (N, M)``."""
    dout, x, w = np.ascontiguousarray(dout), np.ascontiguousarray(x), np.ascontiguousarray(w)
    dx = np.empty(x.shape, dtype=x.dtype)
    dw = np.empty(w.shape, dtype=x.dtype)
    with single_thread_below(x.shape[0] * w.size, DENSE_PARALLEL_MIN), blas_single_threaded():
        _dense_backward(dout, x, w, even_blocks(w.shape[0], DENSE_BLOCK), even_blocks(x.shape[0], DENSE_ROWS), dx, dw)
    return dx, dw

