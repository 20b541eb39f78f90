"""Numba kernels for 2-D convolution: im2col / col2im in Numba, the matrix products in BLAS.

Only NumPy arrays; float32 (fast path) and float64 (gradchecks) compile
separately. The validated entry point is :func:`scratchface.layers.conv.conv2d_forward`,
which imports this module lazily (it imports Numba).

Method (chosen by measurement, see ``benchmarks/bench_conv.py``). With
``K = C*KH*KW`` and ``P = OH*OW``:

* forward: pad the input (NumPy), ``cols (K, N*P)`` <- im2col (Numba, parallel
  over the K rows), one GEMM ``W (F, K) @ cols -> (F, N*P)``, then one Numba
  pass that transposes to NCHW and adds the bias.
* backward: ``dout`` transposed to ``(F, N*P)`` (the bias gradient is summed in
  the same pass, in float64), ``dW = dout_t @ cols.T``, ``dcols = W.T @ dout_t``,
  then col2im (parallel over the ``N*C`` planes: a thread owns a plane, so no
  two threads add to one pixel). ``cols`` is recomputed, not cached: the
  cache would hold ``KH*KW`` copies of every layer's input.
* 1x1, stride 1, no padding: no im2col; the columns are the input with its
  batch and channel axes swapped, ``(C, N*H*W)``, and col2im swaps them back.

What was tried (2 threads, float32, N = 32, a shared and busy 2-core machine,
so only the ordering is trustworthy): im2col reading the padded input vs
testing bounds inside the kernel: 41 vs 54 ms (conv1), 49 vs 64 ms (conv2);
col2im into a padded per-plane buffer vs bounds tests: 37 vs 40 ms, 41 vs 44 ms,
20 vs 28 ms (3x3 at 12x12). One GEMM over the whole batch vs ``np.matmul``
per image ``(N, K, P)``: 35 vs 39 ms (conv1), 115 vs 848 ms (conv2),
45 vs 48 ms (3x3 at 12x12), 1.1 vs 2.2 ms (5x5 at 12x12).
"""
from __future__ import annotations

import numba
import numpy as np
import scipy.linalg.cython_blas  # noqa: F401  (loads the BLAS that Numba's np.dot calls, before threadpoolctl looks)
from numba import prange
from threadpoolctl import ThreadpoolController

from ._numba import single_thread_below

__all__ = ["conv2d_grads_numba", "conv2d_output_numba"]


# ---------------------------------------------------------------- fused, one thread pool
@numba.njit(cache=True)
def _im2col_rows(xpad, r0, r1, kh, kw, sh, sw, oh, ow, cols):
    """``cols[(c, i, j), (r - r0)*OW + q] = xpad[b, c, p*sh + i, q*sw + j]`` for the output rows
    ``r = b*OH + p`` in ``[r0, r1)`` (whole images ``b0 .. b1``: ``r0 = b0*OH``, ``r1 = b1*OH``)."""
    c = xpad.shape[1]
    for k in range(c * kh * kw):
        ci = k // (kh * kw)
        i = (k // kw) % kh
        j = k % kw
        row = cols[k]
        for r in range(r0, r1):
            line = xpad[r // oh, ci, (r % oh) * sh + i]
            start = (r - r0) * ow
            for q in range(ow):
                row[start + q] = line[q * sw + j]


@numba.njit(cache=True)
def _col2im_images(dcols, b0, b1, kh, kw, sh, sw, top, left, oh, ow, dx):
    """Adjoint of ``_im2col_rows`` over whole images: add the columns onto a padded plane, keep its interior in ``dx[b0:b1]``."""
    c, h, w = dx.shape[1:]
    npix = oh * ow
    hp = max((oh - 1) * sh + kh, top + h)
    wp = max((ow - 1) * sw + kw, left + w)
    acc = np.empty((hp, wp), dtype=dx.dtype)
    for b in range(b0, b1):
        for ci in range(c):
            acc[:] = 0
            for i in range(kh):
                for j in range(kw):
                    row = dcols[(ci * kh + i) * kw + j]
                    for p in range(oh):
                        line = acc[p * sh + i]
                        start = (b - b0) * npix + p * ow
                        for q in range(ow):
                            line[q * sw + j] += row[start + q]
            for y in range(h):
                for x in range(w):
                    dx[b, ci, y, x] = acc[y + top, x + left]


@numba.njit(cache=True, parallel=True)
def _fused_forward(xpad, wmat, bias, has_bias, kh, kw, sh, sw, oh, ow, nchunks, out):
    """Chunk ``t`` of the ``N*OH`` output rows: im2col of its rows, one GEMM, the result written as NCHW + bias."""
    rows = xpad.shape[0] * oh
    f, kdim = wmat.shape
    for t in prange(nchunks):
        r0 = t * rows // nchunks
        r1 = (t + 1) * rows // nchunks
        if r1 == r0:
            continue
        cols = np.empty((kdim, (r1 - r0) * ow), dtype=xpad.dtype)
        _im2col_rows(xpad, r0, r1, kh, kw, sh, sw, oh, ow, cols)
        res = np.dot(wmat, cols)                                   # (F, chunk pixels), BLAS on this thread
        for k in range(f):
            add = bias[k] if has_bias else bias[k] * 0
            src = res[k]
            for r in range(r0, r1):
                dst = out[r // oh, k]
                start = (r - r0) * ow
                base = (r % oh) * ow
                for q in range(ow):
                    dst[base + q] = src[start + q] + add


@numba.njit(cache=True, parallel=True)
def _fused_backward(dout, xpad, wmat, kh, kw, sh, sw, top, left, oh, ow, nchunks, dx, dw_parts, db_parts):
    """Thread ``t`` takes chunks ``t*nchunks//T .. (t+1)*nchunks//T``; per chunk: dout to ``(F, pixels)``,
    im2col, ``dW_t += dout_t @ cols.T``, ``dcols = W.T @ dout_t``, col2im into its own images of ``dx``."""
    n, f, npix = dout.shape
    kdim = wmat.shape[1]
    nthreads = dw_parts.shape[0]
    wmat_t = wmat.T
    for t in prange(nthreads):
        dw_acc = dw_parts[t]
        db_acc = db_parts[t]
        for s in range(t * nchunks // nthreads, (t + 1) * nchunks // nthreads):
            b0 = s * n // nchunks
            b1 = (s + 1) * n // nchunks
            if b1 == b0:
                continue
            dout_t = np.empty((f, (b1 - b0) * npix), dtype=dout.dtype)
            for k in range(f):
                acc = 0.0
                for b in range(b0, b1):
                    src = dout[b, k]
                    for p in range(npix):
                        v = src[p]
                        dout_t[k, (b - b0) * npix + p] = v
                        acc += v
                db_acc[k] += acc
            cols = np.empty((kdim, (b1 - b0) * npix), dtype=dout.dtype)
            _im2col_rows(xpad, b0 * oh, b1 * oh, kh, kw, sh, sw, oh, ow, cols)
            dw_acc += np.dot(dout_t, cols.T)
            dcols = np.dot(wmat_t, dout_t)
            _col2im_images(dcols, b0, b1, kh, kw, sh, sw, top, left, oh, ow, dx)


def conv2d_output_numba(x, w, b, stride, padding):
    """The convolution output ``out (N, F, OH, OW)`` of validated NumPy arrays.

    See :func:`scratchface.layers.conv.conv2d_forward` for the arguments and the math.
    """
    n = x.shape[0]
    f, c, kh, kw = w.shape
    top, bottom, left, right = padding
    oh = (x.shape[2] + top + bottom - kh) // stride[0] + 1
    ow = (x.shape[3] + left + right - kw) // stride[1] + 1
    cols_size = n * oh * ow * c * kh * kw
    with single_thread_below(cols_size, CONV_SMALL_WORK), _blas_one_thread():
        out = np.empty((n, f, oh * ow), dtype=x.dtype)
        bias = np.zeros(f, dtype=x.dtype) if b is None else np.ascontiguousarray(b)
        nchunks = _chunks(n * oh, cols_size)
        _fused_forward(_padded(x, padding), np.ascontiguousarray(w).reshape(f, -1), bias, b is not None,
                       kh, kw, stride[0], stride[1], oh, ow, nchunks, out)
    return out.reshape(n, f, oh, ow)


def conv2d_grads_numba(dout, x, w, has_bias, stride, padding):
    """``(dx, dw, db)`` for validated NumPy arrays (see ``scratchface.layers.conv.conv2d_backward``)."""
    n = x.shape[0]
    f, c, kh, kw = w.shape
    oh, ow = dout.shape[2:]
    cols_size = n * oh * ow * c * kh * kw
    with single_thread_below(cols_size, CONV_SMALL_WORK), _blas_one_thread():
        nchunks = _chunks(n, cols_size)
        parts = min(numba.get_num_threads(), nchunks)       # one dW / db accumulator per thread
        dw_parts = np.zeros((parts, f, c * kh * kw), dtype=x.dtype)
        db_parts = np.zeros((parts, f), dtype=np.float64)
        dx = np.empty(x.shape, dtype=x.dtype)
        _fused_backward(np.ascontiguousarray(dout).reshape(n, f, oh * ow), _padded(x, padding),
                        np.ascontiguousarray(w).reshape(f, -1), kh, kw, stride[0], stride[1], padding[0], padding[2],
                        oh, ow, nchunks, dx, dw_parts, db_parts)
    dw = (dw_parts[0] if parts == 1 else dw_parts.sum(axis=0)).reshape(w.shape)
    return dx, dw, (db_parts.sum(axis=0).astype(x.dtype) if has_bias else None)


COLS_CHUNK = 1 << 18      # elements of one im2col block (1 MiB in float32: it stays in L2 / L3 for its GEMM)
CONV_SMALL_WORK = 1 << 21  # im2col elements below which one thread does it all (see _numba.single_thread_below)
_CONTROLLER = []


def _blas_one_thread():
    """BLAS limited to one thread inside the block: the fused kernels call it from each Numba thread."""
    if not _CONTROLLER:
        _CONTROLLER.append(ThreadpoolController())
    return _CONTROLLER[0].limit(limits=1, user_api="blas")


def _chunks(units, cols_size):
    """How many chunks of ``units`` (output rows, or images): one per thread at least, else ~``COLS_CHUNK`` each."""
    return int(min(units, max(numba.get_num_threads(), -(-cols_size // COLS_CHUNK))))


def _padded(x, padding):
    x = np.ascontiguousarray(x)
    top, bottom, left, right = padding
    return np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right))) if any(padding) else x
