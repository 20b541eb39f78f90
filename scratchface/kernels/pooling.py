"""Numba kernels for max, average and L2 pooling (NumPy arrays only).

Direct loops, parallel over the ``N * C`` planes (each thread owns whole planes,
so the backward scatter has no races). Pooling does one or two operations per
input element read: it is memory-bound, and a direct loop reads each window
in place, where im2col would first write ``KH*KW`` copies of the input.
One forward and one backward kernel serve all three modes (fewer compilations:
Numba compiles each function once per dtype); the forward records each max
window's argmax for the backward.

Inference (:func:`max_pool2d_values_numba`, for
:func:`scratchface.layers.pooling.max_pool2d`, MTCNN's pools) needs no argmax:
:func:`_max_pool_forward` is separable, per output row the maximum over the window's
rows (contiguous, vectorised), then over the window's columns (no bounds tests on the
interior columns). MTCNN's 18 pools on ``detect_faces`` of bald_guys.jpg, 2 threads:
229 ms -> 88 ms (``cProfile``, the kernels' own time). Computing the argmax again in
the backward instead was tried and dropped: the NN2 max pool 3x3/2 fwd + bwd went from
14.4 to 20.0 ms (``benchmarks/bench_conv.py``).

The validated entry points are in :mod:`scratchface.layers.pooling`, which
imports this module lazily (it imports Numba).
"""
from __future__ import annotations

import numba
import numpy as np
from numba import prange

from ._numba import single_thread_below

__all__ = ["max_pool2d_values_numba", "pool2d_output_numba", "pool2d_dx_numba"]

MAX, AVG, L2 = 0, 1, 2
_MODES = {"max": MAX, "avg": AVG, "l2": L2}


@numba.njit(cache=True, parallel=True)
def _max_pool_forward(x, kh, kw, sh, sw, top, left, out):
    """Max pooling, separably, one plane per task: for each output row, the maximum over the window's
    rows (contiguous: vectorised), then over the window's columns of that row (the interior columns,
    whose windows lie inside the input, without bounds tests). Values only: the backward finds the
    maxima again."""
    n, c, h, w = x.shape
    oh, ow = out.shape[2], out.shape[3]
    q0 = min(ow, (left + sw - 1) // sw)                   # first column whose window starts inside
    q1 = max(q0, min(ow, (w + left - kw) // sw + 1))      # past the last column whose window ends inside
    for t in prange(n * c):
        plane = x[t // c, t % c]
        rows_max = np.empty(w, dtype=x.dtype)
        for p in range(oh):
            h0 = p * sh - top
            hs, he = max(h0, 0), min(h0 + kh, h)
            rows_max[:] = plane[hs]
            for hh in range(hs + 1, he):
                line = plane[hh]
                for col in range(w):
                    rows_max[col] = max(rows_max[col], line[col])
            row = out[t // c, t % c, p]
            for q in range(q0, q1):
                best = rows_max[q * sw - left]
                for j in range(1, kw):
                    best = max(best, rows_max[q * sw - left + j])
                row[q] = best
            _clipped_max(row, rows_max, 0, q0, sw, left, kw)
            _clipped_max(row, rows_max, q1, ow, sw, left, kw)


@numba.njit(cache=True)
def _clipped_max(row, line, q_from, q_to, sw, left, kw):
    """``row[q] = max(line[window of q inside the line])`` for the border columns ``q_from .. q_to``."""
    for q in range(q_from, q_to):
        w0 = q * sw - left
        best = line[max(w0, 0)]
        for ww in range(max(w0, 0) + 1, min(w0 + kw, line.shape[0])):
            best = max(best, line[ww])
        row[q] = best


@numba.njit(cache=True, parallel=True)
def _pool_forward(x, mode, kh, kw, sh, sw, top, bottom, left, right, include_pad, out, argmax):
    n, c, h, w = x.shape
    oh, ow = out.shape[2], out.shape[3]
    for t in prange(n * c):
        b = t // c
        ch = t % c
        plane = x[b, ch]
        for p in range(oh):
            h0 = p * sh - top
            h1 = min(h0 + kh, h + bottom)
            hs, he = max(h0, 0), min(h1, h)
            for q in range(ow):
                w0 = q * sw - left
                w1 = min(w0 + kw, w + right)
                ws, we = max(w0, 0), min(w1, w)
                if mode == 0:
                    best = plane[hs, ws]
                    idx = hs * w + ws
                    for hh in range(hs, he):
                        for ww in range(ws, we):
                            v = plane[hh, ww]
                            if v > best:
                                best = v
                                idx = hh * w + ww
                    out[b, ch, p, q] = best
                    argmax[b, ch, p, q] = idx
                else:
                    acc = 0.0
                    for hh in range(hs, he):
                        for ww in range(ws, we):
                            v = plane[hh, ww]
                            acc += v * v if mode == 2 else v
                    if mode == 2:
                        out[b, ch, p, q] = np.sqrt(acc)
                    else:
                        count = (h1 - h0) * (w1 - w0) if include_pad else (he - hs) * (we - ws)
                        out[b, ch, p, q] = acc / count


@numba.njit(cache=True, parallel=True)
def _pool_backward(dout, x, out, argmax, mode, kh, kw, sh, sw, top, bottom, left, right, include_pad, dx):
    n, c, h, w = dx.shape
    oh, ow = dout.shape[2], dout.shape[3]
    for t in prange(n * c):
        b = t // c
        ch = t % c
        grad = dx[b, ch]
        grad[:, :] = 0
        g = dout[b, ch]
        if mode == 0:
            flat = grad.reshape(h * w)
            for p in range(oh):
                for q in range(ow):
                    flat[argmax[b, ch, p, q]] += g[p, q]
            continue
        for p in range(oh):
            h0 = p * sh - top
            h1 = min(h0 + kh, h + bottom)
            hs, he = max(h0, 0), min(h1, h)
            for q in range(ow):
                w0 = q * sw - left
                w1 = min(w0 + kw, w + right)
                ws, we = max(w0, 0), min(w1, w)
                if mode == 1:
                    count = (h1 - h0) * (w1 - w0) if include_pad else (he - hs) * (we - ws)
                    share = g[p, q] / count
                    for hh in range(hs, he):
                        for ww in range(ws, we):
                            grad[hh, ww] += share
                else:
                    o = out[b, ch, p, q]
                    if o > 0:
                        scale = g[p, q] / o
                        for hh in range(hs, he):
                            for ww in range(ws, we):
                                grad[hh, ww] += x[b, ch, hh, ww] * scale


def pool2d_output_numba(x, mode, kernel, stride, padding, out_hw, count_include_pad):
    """``(out, argmax)`` for a validated NumPy ``x``; ``argmax`` (max pool only, else None) indexes the
    flattened H*W plane. ``mode`` in ``{'max', 'avg', 'l2'}``; ``padding`` (top, bottom, left, right)."""
    x = np.ascontiguousarray(x)
    n, c = x.shape[:2]
    out = np.empty((n, c) + tuple(out_hw), dtype=x.dtype)
    argmax = np.empty((n, c) + tuple(out_hw) if mode == "max" else (1, 1, 1, 1), dtype=np.int64)
    with single_thread_below(x.size + out.size):
        _pool_forward(x, _MODES[mode], kernel[0], kernel[1], stride[0], stride[1], *padding,
                      bool(count_include_pad), out, argmax)
    return out, (argmax if mode == "max" else None)


def pool2d_dx_numba(dout, x, out, argmax, mode, kernel, stride, padding, count_include_pad):
    """``dx`` of :func:`pool2d_output_numba` for a validated ``dout``: ``out`` is needed by L2 pooling,
    ``argmax`` by max pooling (None otherwise); the other arguments as given to the forward."""
    x = np.ascontiguousarray(x)
    out = out if out is not None else np.empty((1, 1, 1, 1), dtype=x.dtype)
    argmax = argmax if argmax is not None else np.empty((1, 1, 1, 1), dtype=np.int64)
    dx = np.empty_like(x)
    with single_thread_below(x.size + dout.size):
        _pool_backward(np.ascontiguousarray(dout), x, out, argmax, _MODES[mode], *kernel, *stride, *padding,
                       bool(count_include_pad), dx)
    return dx


def max_pool2d_values_numba(x, kernel, stride, padding, out_hw):
    """Max pooling's ``out`` only (no argmax: inference) for a validated NumPy ``x``; arguments as
    :func:`pool2d_output_numba`'s."""
    x = np.ascontiguousarray(x)
    out = np.empty(x.shape[:2] + tuple(out_hw), dtype=x.dtype)
    with single_thread_below(x.size + out.size):
        _max_pool_forward(x, kernel[0], kernel[1], stride[0], stride[1], padding[0], padding[2], out)
    return out
