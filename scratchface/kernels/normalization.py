"""Numba kernels for local response normalisation (LRN) across channels (NumPy arrays only).

The readable version (:func:`scratchface.layers.normalization.lrn_forward`) makes a
dozen whole-array NumPy passes and raises the denominator to ``-beta`` with NumPy's
``power``, a scalar ``powf`` per element. Here, per image and per pixel block, the
window sums of ``x^2`` (the same additions, in the same order), the denominator and
the output are one parallel pass, and for the usual ``beta = 3/4`` the power is
``D^{-3/4} = r \\sqrt{r}`` with ``r = 1 / \\sqrt{D}`` (square roots vectorise;
within 3 ulp of ``pow``). FaceNet NN2 (96 x 96, batch 32), its two LRN layers,
forward + backward, 2 threads: 176 ms -> 88 ms (``cProfile`` of one training step, the
kernels' own time). Sixth #16 pass: the kernels run on all threads from ``MEMORY_BOUND_WORK``
(``_numba``) elements; NN2's first LRN (32x64x24x24, 1.2 M elements) was below ``SMALL_WORK`` and ran on one
thread: forward 10.7 -> 6.5 ms, backward 12.8 -> 7.9 ms (Zen 4, 1 against 2 threads,
``python benchmarks/bench_layers.py``).

The validated entry points are :func:`scratchface.layers.normalization.lrn_forward`
and ``lrn_backward``, which import this module lazily (it imports Numba).
"""
from __future__ import annotations

import numba
import numpy as np
from numba import prange

from ._numba import MEMORY_BOUND_WORK, single_thread_below

__all__ = ["lrn_dx_numba", "lrn_output_numba"]

BLOCK = 512  #: pixels per task: a (C, BLOCK) slab of one image stays in cache


@numba.njit(cache=True)
def _neg_power(d, beta, out):
    """``out = d ** -beta`` elementwise, in the dtype of ``d``; ``beta = 3/4`` through two square roots."""
    one = d.dtype.type(1)
    if beta == 0.75:
        for p in range(d.shape[0]):
            r = one / np.sqrt(d[p])
            out[p] = r * np.sqrt(r)
    else:
        for p in range(d.shape[0]):
            out[p] = d[p] ** -beta


@numba.njit(cache=True)
def _task(t, blocks, npix):
    """Task ``t``: image ``b`` and its pixels ``p0 .. p1`` (``blocks`` blocks of ``BLOCK`` per image)."""
    p0 = (t % blocks) * BLOCK
    return t // blocks, p0, min(p0 + BLOCK, npix)


@numba.njit(cache=True, parallel=True)
def _lrn_forward(x, before, after, scale, k, beta, out, denom):
    """``denom = k + scale * window sum of x^2`` over channels ``c - before .. c + after``; ``out = x denom^-beta``."""
    n, c, npix = x.shape
    blocks = -(-npix // BLOCK)
    for t in prange(n * blocks):
        b, p0, p1 = _task(t, blocks, npix)
        for ch in range(c):
            d = denom[b, ch]
            for p in range(p0, p1):
                d[p] = 0.0
            for src in range(ch - before, ch + after + 1):     # the reference's order: window start first
                if 0 <= src < c:
                    v = x[b, src]
                    for p in range(p0, p1):
                        d[p] += v[p] * v[p]
            xs, o = x[b, ch], out[b, ch]
            for p in range(p0, p1):
                d[p] = k + scale * d[p]
            _neg_power(d[p0:p1], beta, o[p0:p1])
            for p in range(p0, p1):
                o[p] *= xs[p]


@numba.njit(cache=True, parallel=True)
def _lrn_backward(dout, x, denom, before, after, scale2, beta, dx):
    """``dx = dout D^-beta - scale2 x sum_{c in W(j)} dout_c x_c D_c^{-beta-1}``, ``W`` the reflected window."""
    n, c, npix = x.shape
    blocks = -(-npix // BLOCK)
    for t in prange(n * blocks):
        b, p0, p1 = _task(t, blocks, npix)
        w = np.empty((c, p1 - p0), dtype=x.dtype)          # dout x D^-beta / D of the block
        scaled = np.empty((c, p1 - p0), dtype=x.dtype)     # D^-beta of the block
        for ch in range(c):
            g, xs, d = dout[b, ch], x[b, ch], denom[b, ch]
            _neg_power(d[p0:p1], beta, scaled[ch])
            for p in range(p0, p1):
                w[ch, p - p0] = g[p] * xs[p] * scaled[ch, p - p0] / d[p]
        for ch in range(c):
            g, xs, out = dout[b, ch], x[b, ch], dx[b, ch]
            for p in range(p0, p1):
                out[p] = 0.0
            for src in range(ch - after, ch + before + 1):     # every c whose window holds ch
                if 0 <= src < c:
                    v = w[src]
                    for p in range(p0, p1):
                        out[p] += v[p - p0]
            for p in range(p0, p1):
                out[p] = g[p] * scaled[ch, p - p0] - scale2 * xs[p] * out[p]


def _as3(a):
    a = np.ascontiguousarray(a)
    return a.reshape(a.shape[0], a.shape[1], -1)


def lrn_output_numba(x, size, alpha, beta, k):
    """``(out, denom)`` of a validated NumPy ``x`` (N, C, ...), as ``lrn_forward``'s reference."""
    x3 = _as3(x)
    out, denom = np.empty_like(x3), np.empty_like(x3)
    t = x3.dtype.type
    with single_thread_below(x3.size, MEMORY_BOUND_WORK):
        _lrn_forward(x3, size // 2, (size - 1) // 2, t(alpha / size), t(k), t(beta), out, denom)
    return out.reshape(x.shape), denom.reshape(x.shape)


def lrn_dx_numba(dout, x, denom, size, alpha, beta):
    """``dx`` for a validated ``dout``, from the forward's ``x`` and ``denom``."""
    x3 = _as3(x)
    dx = np.empty_like(x3)
    t = x3.dtype.type
    with single_thread_below(x3.size, MEMORY_BOUND_WORK):
        _lrn_backward(_as3(dout), x3, _as3(denom), size // 2, (size - 1) // 2, t(2 * alpha * beta / size), t(beta),
                      dx)
    return dx.reshape(x.shape)
