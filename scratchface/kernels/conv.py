"""Numba kernels for 2-D convolution: im2col / col2im in Numba, the matrix products in BLAS.

Only NumPy arrays; float32 (fast path) and float64 (gradchecks) compile
separately. The validated entry point is :func:`scratchface.layers.conv.conv2d_forward`,
which imports this module lazily (it imports Numba).

Method (chosen by measurement, see ``benchmarks/bench_conv.py``). With
``K = C*KH*KW`` and ``P = OH*OW``:

* forward: ``cols (K, N*P)`` <- im2col (Numba, parallel over the K rows), then
  one GEMM ``W (F, K) @ cols -> (F, N*P)``, then one Numba pass that transposes
  to NCHW and adds the bias. One big GEMM keeps both BLAS threads busy even
  at 12x12 where per-image products (``F x K x 144``) are too small.
* backward: ``dout`` transposed to ``(F, N*P)`` (the bias gradient is summed in
  the same pass, in float64), ``dW = dout_t @ cols.T``, ``dcols = W.T @ dout_t``,
  then col2im (parallel over the ``N*C`` planes, so no two threads add to the
  same pixel).
* 1x1, stride 1, no padding: the input already *is* the column matrix of
  each image, so no im2col: batched ``W @ x[n]`` products.
"""
from __future__ import annotations

import numba
import numpy as np
from numba import prange

__all__ = ["conv2d_forward", "conv2d_backward", "im2col", "col2im"]


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


def _im2col(x, kh, kw, stride, padding, oh, ow):
    """Pad (NumPy, one copy of the input) then unroll into ``cols (C*KH*KW, N*OH*OW)``."""
    top, bottom, left, right = padding
    xpad = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right))) if any(padding) else x
    cols = np.empty((x.shape[1] * kh * kw, x.shape[0] * oh * ow), dtype=x.dtype)
    im2col(xpad, kh, kw, stride[0], stride[1], oh, ow, cols)
    return cols


def _is_pointwise(w, stride, padding):
    return w.shape[2] == 1 and w.shape[3] == 1 and tuple(stride) == (1, 1) and not any(padding)


def conv2d_forward(x, w, b, stride, padding):
    """Convolution of validated NumPy arrays (see ``scratchface.layers.conv.conv2d_forward``)."""
    n, c, h, wd = x.shape
    f, _, kh, kw = w.shape
    sh, sw = stride
    top, bottom, left, right = padding
    oh = (h + top + bottom - kh) // sh + 1
    ow = (wd + left + right - kw) // sw + 1
    x = np.ascontiguousarray(x)
    if _is_pointwise(w, stride, padding):
        out = np.matmul(w.reshape(f, c), x.reshape(n, c, h * wd))
        if b is not None:
            out += b.reshape(1, f, 1)
        return out.reshape(n, f, oh, ow)
    cols = _im2col(x, kh, kw, stride, padding, oh, ow)
    out2 = np.ascontiguousarray(w).reshape(f, -1) @ cols
    out = np.empty((n, f, oh * ow), dtype=x.dtype)
    bias = np.zeros(f, dtype=x.dtype) if b is None else np.ascontiguousarray(b)
    _fn_to_nf(out2, bias, b is not None, n, out)
    return out.reshape(n, f, oh, ow)


def conv2d_backward(dout, x, w, has_bias, stride, padding):
    """``(dx, dw, db)`` for validated NumPy arrays (see ``scratchface.layers.conv.conv2d_backward``)."""
    n, c, h, wd = x.shape
    f, _, kh, kw = w.shape
    oh, ow = dout.shape[2:]
    sh, sw = stride
    top, _, left, _ = padding
    dout3 = np.ascontiguousarray(dout).reshape(n, f, oh * ow)
    x = np.ascontiguousarray(x)
    w2 = np.ascontiguousarray(w).reshape(f, -1)
    if _is_pointwise(w, stride, padding):
        x3 = x.reshape(n, c, h * wd)
        dx = np.matmul(w2.T, dout3).reshape(x.shape)
        dw = np.einsum("nfp,ncp->fc", dout3, x3, optimize=True).reshape(w.shape)
        db = dout3.sum(axis=(0, 2)) if has_bias else None
        return dx, dw.astype(x.dtype, copy=False), db
    dout_t = np.empty((f, n * oh * ow), dtype=x.dtype)
    db = np.empty(f, dtype=x.dtype)
    _nf_to_fn(dout3, dout_t, db)
    cols = _im2col(x, kh, kw, stride, padding, oh, ow)
    dw = (dout_t @ cols.T).reshape(w.shape)
    dcols = w2.T @ dout_t
    del cols
    dx = np.empty_like(x)
    col2im(dcols, kh, kw, sh, sw, top, left, oh, ow, dx)
    return dx, dw, (db if has_bias else None)
