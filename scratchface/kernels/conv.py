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
from numba import prange
from threadpoolctl import ThreadpoolController

from ._numba import single_thread_below

__all__ = ["conv2d_output_numba", "conv2d_grads_numba", "im2col", "col2im"]


@numba.njit(cache=True, parallel=True)
def im2col(xpad, kh, kw, sh, sw, oh, ow, cols):
    """``cols[(c, i, j), n*P + p*OW + q] = xpad[n, c, p*sh + i, q*sw + j]`` (``xpad``: the padded input)."""
    n, c = xpad.shape[:2]
    npix = oh * ow
    for r in prange(c * kh * kw):
        ci = r // (kh * kw)
        i = (r // kw) % kh
        j = r % kw
        row = cols[r]
        for b in range(n):
            src = xpad[b, ci]
            for p in range(oh):
                line = src[p * sh + i]
                start = b * npix + p * ow
                for q in range(ow):
                    row[start + q] = line[q * sw + j]


@numba.njit(cache=True, parallel=True)
def col2im(dcols, kh, kw, sh, sw, top, left, oh, ow, dx):
    """Adjoint of ``im2col``: add the columns back onto a padded plane, keep its interior in ``dx``.

    Parallel over the ``N*C`` planes: one thread owns a plane, so no two threads add to one pixel.
    """
    n, c, h, w = dx.shape
    npix = oh * ow
    hp = (oh - 1) * sh + kh
    wp = (ow - 1) * sw + kw
    for t in prange(n * c):
        b = t // c
        ci = t % c
        acc = np.zeros((hp, wp), dtype=dx.dtype)
        for i in range(kh):
            for j in range(kw):
                row = dcols[(ci * kh + i) * kw + j]
                for p in range(oh):
                    line = acc[p * sh + i]
                    start = b * npix + p * ow
                    for q in range(ow):
                        line[q * sw + j] += row[start + q]
        for hh in range(h):
            for ww in range(w):
                y, x = hh + top, ww + left
                dx[b, ci, hh, ww] = acc[y, x] if (y < hp and x < wp) else acc[0, 0] * 0


@numba.njit(cache=True, parallel=True)
def _fn_to_nf(out2, bias, has_bias, n, out):
    """``out[b, f, :] = out2[f, b*P:(b+1)*P] + bias[f]`` (GEMM result to NCHW)."""
    f = out2.shape[0]
    npix = out.shape[2]
    for t in prange(n * f):
        b = t // f
        k = t % f
        src = out2[k]
        dst = out[b, k]
        add = bias[k] if has_bias else bias[k] * 0
        for p in range(npix):
            dst[p] = src[b * npix + p] + add


@numba.njit(cache=True, parallel=True)
def _nf_to_fn(dout, dout_t, db):
    """``dout_t[f, b*P + p] = dout[b, f, p]`` and ``db[f] = sum over b, p`` (float64 accumulator)."""
    n, f, npix = dout.shape
    for k in prange(f):
        acc = 0.0
        for b in range(n):
            src = dout[b, k]
            base = b * npix
            for p in range(npix):
                v = src[p]
                dout_t[k, base + p] = v
                acc += v
        db[k] = acc


# ---------------------------------------------------------------- fused, one thread pool
@numba.njit(cache=True)
def _im2col_images(xpad, b0, b1, kh, kw, sh, sw, oh, ow, cols):
    """``cols[(c, i, j), (b - b0)*P + p*OW + q] = xpad[b, c, p*sh + i, q*sw + j]`` for images ``b0 <= b < b1``."""
    c = xpad.shape[1]
    npix = oh * ow
    for r in range(c * kh * kw):
        ci = r // (kh * kw)
        i = (r // kw) % kh
        j = r % kw
        row = cols[r]
        for b in range(b0, b1):
            src = xpad[b, ci]
            for p in range(oh):
                line = src[p * sh + i]
                start = (b - b0) * npix + p * ow
                for q in range(ow):
                    row[start + q] = line[q * sw + j]


@numba.njit(cache=True)
def _col2im_images(dcols, b0, b1, kh, kw, sh, sw, top, left, oh, ow, dx):
    """Adjoint of ``_im2col_images``: add the columns onto a padded plane, keep its interior in ``dx[b0:b1]``."""
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
    """Each thread, for its chunks of images: im2col of the chunk, one GEMM, the result written as NCHW + bias."""
    n = xpad.shape[0]
    f, kdim = wmat.shape
    npix = oh * ow
    for t in prange(nchunks):
        b0 = t * n // nchunks
        b1 = (t + 1) * n // nchunks
        if b1 == b0:
            continue
        cols = np.empty((kdim, (b1 - b0) * npix), dtype=xpad.dtype)
        _im2col_images(xpad, b0, b1, kh, kw, sh, sw, oh, ow, cols)
        res = np.dot(wmat, cols)                                   # (F, chunk pixels), BLAS on this thread
        for b in range(b0, b1):
            for k in range(f):
                add = bias[k] if has_bias else bias[k] * 0
                src = res[k]
                dst = out[b, k]
                for p in range(npix):
                    dst[p] = src[(b - b0) * npix + p] + add


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
            _im2col_images(xpad, b0, b1, kh, kw, sh, sw, oh, ow, cols)
            dw_acc += np.dot(dout_t, cols.T)
            dcols = np.dot(wmat_t, dout_t)
            _col2im_images(dcols, b0, b1, kh, kw, sh, sw, top, left, oh, ow, dx)


def _is_pointwise(kh, kw, stride, padding):
    return kh == 1 and kw == 1 and tuple(stride) == (1, 1) and not any(padding)


def _im2col(x, kh, kw, stride, padding, oh, ow):
    """``cols (C*KH*KW, N*OH*OW)``: pad (NumPy, one copy of the input) then unroll.

    A 1x1 convolution with stride 1 and no padding needs no unrolling: its columns are
    the input with the batch and channel axes swapped, ``(C, N*H*W)``.
    """
    n, c = x.shape[:2]
    cols = np.empty((c * kh * kw, n * oh * ow), dtype=x.dtype)
    if _is_pointwise(kh, kw, stride, padding):
        _nf_to_fn(x.reshape(n, c, oh * ow), cols, np.empty(c, dtype=x.dtype))
        return cols
    top, bottom, left, right = padding
    xpad = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right))) if any(padding) else x
    im2col(xpad, kh, kw, stride[0], stride[1], oh, ow, cols)
    return cols


def conv2d_output_numba(x, w, b, stride, padding):
    """The convolution output ``out (N, F, OH, OW)`` of validated NumPy arrays.

    See :func:`scratchface.layers.conv.conv2d_forward` for the arguments and the math.
    """
    f, c, kh, kw = w.shape
    top, bottom, left, right = padding
    oh = (x.shape[2] + top + bottom - kh) // stride[0] + 1
    ow = (x.shape[3] + left + right - kw) // stride[1] + 1
    with single_thread_below(x.shape[0] * oh * ow * c * kh * kw):   # the size of cols
        if _use_fused(x.shape[0]):
            with _blas_one_thread():
                return _conv2d_forward_fused(x, w, b, stride, padding, oh, ow)
        return _conv2d_forward(x, w, b, stride, padding)


def conv2d_grads_numba(dout, x, w, has_bias, stride, padding):
    """``(dx, dw, db)`` for validated NumPy arrays (see ``scratchface.layers.conv.conv2d_backward``)."""
    f, c, kh, kw = w.shape
    with single_thread_below(dout.size // f * c * kh * kw):          # the size of cols
        if _use_fused(x.shape[0]):
            with _blas_one_thread():
                return _conv2d_backward_fused(dout, x, w, has_bias, stride, padding)
        return _conv2d_backward(dout, x, w, has_bias, stride, padding)


COLS_CHUNK = 1 << 18   # elements of one thread's im2col block (1 MiB in float32: stays in L2 / L3)
_CONTROLLER = []


def _use_fused(n):
    """The fused kernels split the batch over the threads: they need an image per thread."""
    return n >= numba.get_num_threads()


def _blas_one_thread():
    """BLAS limited to one thread inside the block: the fused kernels call it from each Numba thread."""
    if not _CONTROLLER:
        _CONTROLLER.append(ThreadpoolController())
    return _CONTROLLER[0].limit(limits=1, user_api="blas")


def _chunks(n, cols_size):
    """Chunks of whole images: at least one per thread, about ``COLS_CHUNK`` column elements each."""
    return int(min(n, max(numba.get_num_threads(), -(-cols_size // COLS_CHUNK))))


def _padded(x, padding):
    x = np.ascontiguousarray(x)
    top, bottom, left, right = padding
    return np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right))) if any(padding) else x


def _conv2d_forward_fused(x, w, b, stride, padding, oh, ow):
    n = x.shape[0]
    f, c, kh, kw = w.shape
    out = np.empty((n, f, oh * ow), dtype=x.dtype)
    bias = np.zeros(f, dtype=x.dtype) if b is None else np.ascontiguousarray(b)
    nchunks = _chunks(n, c * kh * kw * n * oh * ow)
    _fused_forward(_padded(x, padding), np.ascontiguousarray(w).reshape(f, -1), bias, b is not None,
                   kh, kw, stride[0], stride[1], oh, ow, nchunks, out)
    return out.reshape(n, f, oh, ow)


def _conv2d_backward_fused(dout, x, w, has_bias, stride, padding):
    n = x.shape[0]
    f, c, kh, kw = w.shape
    oh, ow = dout.shape[2:]
    nthreads = numba.get_num_threads()
    dw_parts = np.zeros((nthreads, f, c * kh * kw), dtype=x.dtype)
    db_parts = np.zeros((nthreads, f), dtype=np.float64)
    dx = np.empty(x.shape, dtype=x.dtype)
    nchunks = max(_chunks(n, c * kh * kw * n * oh * ow), nthreads)
    _fused_backward(np.ascontiguousarray(dout).reshape(n, f, oh * ow), _padded(x, padding),
                    np.ascontiguousarray(w).reshape(f, -1), kh, kw, stride[0], stride[1], padding[0], padding[2],
                    oh, ow, nchunks, dx, dw_parts, db_parts)
    dw = dw_parts.sum(axis=0).reshape(w.shape)
    return dx, dw, (db_parts.sum(axis=0).astype(x.dtype) if has_bias else None)


def _conv2d_forward(x, w, b, stride, padding):
    n, c, h, wd = x.shape
    f, _, kh, kw = w.shape
    top, bottom, left, right = padding
    oh = (h + top + bottom - kh) // stride[0] + 1
    ow = (wd + left + right - kw) // stride[1] + 1
    cols = _im2col(np.ascontiguousarray(x), kh, kw, stride, padding, oh, ow)
    out2 = np.ascontiguousarray(w).reshape(f, -1) @ cols                 # one GEMM, (F, N*P)
    out = np.empty((n, f, oh * ow), dtype=x.dtype)
    bias = np.zeros(f, dtype=x.dtype) if b is None else np.ascontiguousarray(b)
    _fn_to_nf(out2, bias, b is not None, n, out)
    return out.reshape(n, f, oh, ow)


def _conv2d_backward(dout, x, w, has_bias, stride, padding):
    n, c, h, wd = x.shape
    f, _, kh, kw = w.shape
    oh, ow = dout.shape[2:]
    dout_t = np.empty((f, n * oh * ow), dtype=x.dtype)
    db = np.empty(f, dtype=x.dtype)
    _nf_to_fn(np.ascontiguousarray(dout).reshape(n, f, oh * ow), dout_t, db)
    cols = _im2col(np.ascontiguousarray(x), kh, kw, stride, padding, oh, ow)
    dw = (dout_t @ cols.T).reshape(w.shape)
    del cols
    dcols = np.ascontiguousarray(w).reshape(f, -1).T @ dout_t             # (C*KH*KW, N*P)
    dx = np.empty(x.shape, dtype=x.dtype)
    if _is_pointwise(kh, kw, stride, padding):
        _fn_to_nf(dcols, np.zeros(c, dtype=x.dtype), False, n, dx.reshape(n, c, h * wd))
    else:
        col2im(dcols, kh, kw, stride[0], stride[1], padding[0], padding[2], oh, ow, dx)
    return dx, dw, (db if has_bias else None)
