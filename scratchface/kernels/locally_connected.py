"""Numba kernels for the locally connected layer (NumPy arrays only).

Every output pixel ``p`` has its own ``(F, K)`` weight matrix (``K = C*KH*KW``),
so the layer is ``OH*OW`` independent small products. The patches are unrolled
per position into ``cols (P, N, K)`` (Numba, parallel over positions), then
one batched BLAS call does them all:

* forward: ``out_p (N, F) = cols_p @ W_p.T``;
* backward: ``dW_p = dout_p.T @ cols_p``, ``dcols_p = dout_p @ W_p``, then
  col2im (parallel over the ``N*C`` planes: no two threads add to one pixel).

The validated entry points are in :mod:`scratchface.layers.locally_connected`.
"""
from __future__ import annotations

import numba
import numpy as np
from numba import prange

from ._numba import single_thread_below

__all__ = ["locally_connected2d_output_numba", "locally_connected2d_grads_numba"]


@numba.njit(cache=True, parallel=True)
def _im2col_positions(x, kh, kw, sh, sw, top, left, oh, ow, cols):
    """``cols[p*OW + q, n, (c*KH + i)*KW + j] = xpad[n, c, p*sh + i, q*sw + j]``."""
    n, c, h, w = x.shape
    zero = np.zeros(1, dtype=cols.dtype)[0]
    for pos in prange(oh * ow):
        p = pos // ow
        q = pos % ow
        for b in range(n):
            row = cols[pos, b]
            for ci in range(c):
                for i in range(kh):
                    hh = p * sh + i - top
                    for j in range(kw):
                        ww = q * sw + j - left
                        k = (ci * kh + i) * kw + j
                        if 0 <= hh < h and 0 <= ww < w:
                            row[k] = x[b, ci, hh, ww]
                        else:
                            row[k] = zero


@numba.njit(cache=True, parallel=True)
def _col2im_positions(dcols, kh, kw, sh, sw, top, left, oh, ow, dx):
    """Adjoint of ``_im2col_positions``, adding into a zeroed ``dx``."""
    n, c, h, w = dx.shape
    for t in prange(n * c):
        b = t // c
        ci = t % c
        plane = dx[b, ci]
        plane[:, :] = 0
        for p in range(oh):
            for q in range(ow):
                row = dcols[p * ow + q, b]
                for i in range(kh):
                    hh = p * sh + i - top
                    if hh < 0 or hh >= h:
                        continue
                    for j in range(kw):
                        ww = q * sw + j - left
                        if 0 <= ww < w:
                            plane[hh, ww] += row[(ci * kh + i) * kw + j]


def _cols(x, w, stride, padding):
    oh, ow, f, c, kh, kw = w.shape
    x = np.ascontiguousarray(x)
    cols = np.empty((oh * ow, x.shape[0], c * kh * kw), dtype=x.dtype)
    with single_thread_below(cols.size):
        _im2col_positions(x, kh, kw, stride[0], stride[1], padding[0], padding[2], oh, ow, cols)
    return cols


def locally_connected2d_output_numba(x, w, b, stride, padding):
    """Forward for validated NumPy arrays; ``(N, F, OH, OW)``."""
    oh, ow, f = w.shape[:3]
    cols = _cols(x, w, stride, padding)                                    # (P, N, K)
    wmat = np.ascontiguousarray(w).reshape(oh * ow, f, -1)                 # (P, F, K)
    out = np.matmul(cols, wmat.transpose(0, 2, 1))                          # (P, N, F)
    out = out.transpose(1, 2, 0).reshape(x.shape[0], f, oh, ow)
    if b is not None:
        out = out + b[None]
    return np.ascontiguousarray(out)


def locally_connected2d_grads_numba(dout, x, w, has_bias, stride, padding):
    """``(dx, dw, db)`` for validated NumPy arrays."""
    oh, ow, f, c, kh, kw = w.shape
    n = x.shape[0]
    cols = _cols(x, w, stride, padding)                                    # (P, N, K)
    wmat = np.ascontiguousarray(w).reshape(oh * ow, f, -1)                 # (P, F, K)
    dout_p = np.ascontiguousarray(dout.reshape(n, f, oh * ow).transpose(2, 0, 1))  # (P, N, F)
    dw = np.matmul(dout_p.transpose(0, 2, 1), cols).reshape(w.shape)
    dcols = np.matmul(dout_p, wmat)                                         # (P, N, K)
    dx = np.empty(x.shape, dtype=x.dtype)
    with single_thread_below(dcols.size):
        _col2im_positions(dcols, kh, kw, stride[0], stride[1], padding[0], padding[2], oh, ow, dx)
    db = dout.sum(axis=0) if has_bias else None
    return dx, dw, db
