"""Numba kernels for max, average and L2 pooling (NumPy arrays only).

Direct loops, parallel over the ``N * C`` planes (each thread owns whole planes,
so the backward scatter has no races). Pooling does one or two operations per
input element read: it is memory-bound, and a direct loop reads each window
in place, where im2col would first write ``KH*KW`` copies of the input.

* Max pooling records each window's argmax in the forward; the backward adds each
  window's gradient there.
* Average and L2 pooling are sums over the window, which are separable: per output
  row, the sums (of squares) over the window's rows for every column (contiguous,
  vectorised), then over each window's columns; the backward spreads each window's
  share along its columns, then down its rows. NN2's L2 pools (3x3/1, on 6x6 and
  12x12 planes) at 96x96, batch 32, forward + backward: 140 -> 100 ms (the kernels'
  time in one training step); on 32x192x24x24 (``benchmarks/bench_conv.py``) 85 -> 37
  ms. The former one-loop-per-window kernel spent its time on the window bounds of
  every tap. Sixth #16 pass (Zen 4, 2 threads, the old and new kernel in turn in one
  process, a timing script): the windows' bounds computed once per call (``_windows``)
  instead of per window, L2 forward / backward on 32x640x6x6 5.7 -> 1.6 / 5.3 -> 2.1 ms,
  32x1024x3x3 2.9 -> 0.8 / 2.7 -> 1.3 ms, 32x256x12x12 3.4 -> 2.1 / 3.4 -> 2.3 ms,
  32x192x24x24 10.0 -> 5.6 / 9.7 -> 6.4 ms; and the training kernels run on all threads
  from ``MEMORY_BOUND_WORK`` elements (NN2's pools on 6x6 and 3x3 planes, 0.3-1.5 M
  elements, ran on one thread below ``SMALL_WORK``; inference keeps that threshold).
* Max pooling's training forward is separable too (sixth pass): per output row, each
  column's maximum over the window's rows and the first row holding it, then over each
  window's columns the largest, ties to the smaller row and then the smaller column,
  which is the first maximum in row-major order, as the reference takes it; selects,
  not branches (random data mispredicts half of them). The NN2 max pool 3x3/2 on
  32x192x24x24 (``bench_conv.py``), forward: 10.9 -> 9.2 ms with branches, then the
  kernel alone 5.6 -> 3.8 ms (a timing script).

Inference (:func:`max_pool2d_values_numba`, for
:func:`scratchface.layers.pooling.max_pool2d`, MTCNN's pools) needs no argmax:
``_max_pool_forward`` is separable, per output row the maximum over the window's
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

from ._numba import MEMORY_BOUND_WORK, single_thread_below

__all__ = ["max_pool2d_values_numba", "pool2d_output_numba", "pool2d_dx_numba"]

MAX, AVG, L2 = 0, 1, 2
PLANE_BLOCKS = 256  #: tasks of the separable kernels: runs of planes sharing one scratch row
_MODES = {"max": MAX, "avg": AVG, "l2": L2}


@numba.njit(cache=True, parallel=True)
def _max_pool_forward(x, kh, kw, sh, sw, top, left, out):
    """Max pooling, separably, runs of planes per task: for each output row, the maximum over the window's
    rows (contiguous: vectorised), then over the window's columns of that row (the interior columns,
    whose windows lie inside the input, without bounds tests). Values only: the backward finds the
    maxima again."""
    n, c, h, w = x.shape
    oh, ow = out.shape[2], out.shape[3]
    q0 = min(ow, (left + sw - 1) // sw)                   # first column whose window starts inside
    q1 = max(q0, min(ow, (w + left - kw) // sw + 1))      # past the last column whose window ends inside
    blocks = min(n * c, PLANE_BLOCKS)
    for blk in prange(blocks):
        rows_max = np.empty(w, dtype=x.dtype)                  # scratch, once per block of planes
        for t in range(blk * n * c // blocks, (blk + 1) * n * c // blocks):
            plane = x[t // c, t % c]
            for p in range(oh):
                _column_maxima(plane, p * sh - top, kh, rows_max, rows_max, False)
                row = out[t // c, t % c, p]
                for q in range(q0, q1):
                    best = rows_max[q * sw - left]
                    for j in range(1, kw):
                        best = max(best, rows_max[q * sw - left + j])
                    row[q] = best
                _clipped_max(row, rows_max, 0, q0, sw, left, kw)
                _clipped_max(row, rows_max, q1, ow, sw, left, kw)


@numba.njit(cache=True, inline="always")
def _column_maxima(plane, h0, kh, rows_max, rows_arg, track_rows):
    """``rows_max[col]``: the maximum of column ``col`` over the window's rows ``h0 .. h0 + kh`` clipped to the
    plane (contiguous: vectorised); with ``track_rows``, ``rows_arg[col]`` the first row holding it."""
    hs, he = max(h0, 0), min(h0 + kh, plane.shape[0])
    rows_max[:] = plane[hs]
    if track_rows:
        rows_arg[:] = hs
    for hh in range(hs + 1, he):
        line = plane[hh]
        if track_rows:
            for col in range(line.shape[0]):
                v = line[col]
                up = v > rows_max[col]
                rows_max[col] = v if up else rows_max[col]
                rows_arg[col] = hh if up else rows_arg[col]
        else:
            for col in range(line.shape[0]):
                rows_max[col] = max(rows_max[col], line[col])


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
def _max_pool_argmax_forward(x, kh, kw, sh, sw, top, left, out, argmax):
    """Max pooling with each window's first argmax in row-major order, flat in the ``H * W`` plane, for
    the backward; separably, like ``_max_pool_forward``: per output row, each column's maximum over the
    window's rows and the first row holding it (contiguous: vectorised), then over each window's columns
    the largest, ties to the smaller row, then the smaller column (= the first in row-major order)."""
    n, c, h, w = x.shape
    oh, ow = out.shape[2], out.shape[3]
    blocks = min(n * c, PLANE_BLOCKS)
    for blk in prange(blocks):
        rows_max = np.empty(w, dtype=x.dtype)                  # scratch, once per block of planes
        rows_arg = np.empty(w, dtype=np.int64)
        for t in range(blk * n * c // blocks, (blk + 1) * n * c // blocks):
            plane = x[t // c, t % c]
            for p in range(oh):
                _column_maxima(plane, p * sh - top, kh, rows_max, rows_arg, True)
                row, arg = out[t // c, t % c, p], argmax[t // c, t % c, p]
                for q in range(ow):
                    w0 = q * sw - left
                    ws, we = max(w0, 0), min(w0 + kw, w)
                    best, best_row, best_col = rows_max[ws], rows_arg[ws], ws
                    for ww in range(ws + 1, we):                  # selects, not branches: random data
                        v, r = rows_max[ww], rows_arg[ww]            # mispredicts half of them
                        up = (v > best) | ((v == best) & (r < best_row))
                        best = v if up else best
                        best_row = r if up else best_row
                        best_col = ww if up else best_col
                    row[q] = best
                    arg[q] = best_row * w + best_col


@numba.njit(cache=True, parallel=True)
def _max_pool_backward(dout, argmax, dx):
    """Each window's gradient to its argmax (planes owned by one thread: no races)."""
    n, c, h, w = dx.shape
    oh, ow = dout.shape[2], dout.shape[3]
    for t in prange(n * c):
        b = t // c
        ch = t % c
        flat = dx[b, ch].reshape(h * w)
        flat[:] = 0
        g = dout[b, ch]
        for p in range(oh):
            for q in range(ow):
                flat[argmax[b, ch, p, q]] += g[p, q]


def _windows(n_out, stride, pad_before, kernel, size, pad_after, include_pad):
    """The windows along one axis, for outputs ``0 .. n_out``: ``(start, end)`` clipped to the input and the
    length average pooling divides by (on the padded axis with ``include_pad``, else the clipped one), as
    int64 arrays. Computed once per call: the kernels' former per-window arithmetic cost more than the sums
    on NN2's 6x6 and 3x3 planes."""
    lo = np.arange(n_out, dtype=np.int64) * stride - pad_before
    hi = np.minimum(lo + kernel, size + pad_after)
    start, end = np.maximum(lo, 0), np.minimum(hi, size)
    return start, end, (hi - lo) if include_pad else (end - start)


@numba.njit(cache=True, parallel=True)
def _sum_pool_forward(x, mode, rows, cols, out):
    """Average (``mode`` 1) or L2 (2) pooling, separably: per output row, the sums (of squares) over the
    window's rows for every column (contiguous: vectorised), then over each window's columns; float64 sums.
    ``rows``, ``cols``: ``(start, end, length)`` of the windows along each axis (``_windows``)."""
    n, c, h, w = x.shape
    oh, ow = out.shape[2], out.shape[3]
    hs, he, hcount = rows
    ws, we, wcount = cols
    blocks = min(n * c, PLANE_BLOCKS)
    for blk in prange(blocks):
        rows_sum = np.empty(w)                                 # scratch, once per block of planes
        for t in range(blk * n * c // blocks, (blk + 1) * n * c // blocks):
            plane, o = x[t // c, t % c], out[t // c, t % c]
            for p in range(oh):
                rows_sum[:] = 0.0
                for hh in range(hs[p], he[p]):
                    line = plane[hh]
                    if mode == 2:
                        for col in range(w):
                            rows_sum[col] += line[col] * line[col]
                    else:
                        for col in range(w):
                            rows_sum[col] += line[col]
                for q in range(ow):
                    acc = 0.0
                    for col in range(ws[q], we[q]):
                        acc += rows_sum[col]
                    if mode == 2:
                        o[p, q] = np.sqrt(acc)
                    else:
                        o[p, q] = acc / (hcount[p] * wcount[q])


@numba.njit(cache=True, parallel=True)
def _sum_pool_backward(dout, x, out, mode, rows, cols, dx):
    """The adjoint, separably: each window's share (``dout / count``; L2: ``dout / out``, 0 where
    ``out = 0``) spread along its columns into a row, the row added to the window's rows; L2 then
    multiplies by ``x``."""
    n, c, h, w = dx.shape
    oh, ow = dout.shape[2], dout.shape[3]
    hs, he, hcount = rows
    ws, we, wcount = cols
    blocks = min(n * c, PLANE_BLOCKS)
    for blk in prange(blocks):
        total, spread = np.empty((h, w)), np.empty(w)          # scratch, once per block of planes
        for t in range(blk * n * c // blocks, (blk + 1) * n * c // blocks):
            b, ch = t // c, t % c
            g, grad = dout[b, ch], dx[b, ch]
            total[:] = 0.0
            for p in range(oh):
                spread[:] = 0.0
                for q in range(ow):
                    if mode == 2:
                        o = out[b, ch, p, q]
                        share = g[p, q] / o if o > 0 else 0.0
                    else:
                        share = g[p, q] / (hcount[p] * wcount[q])
                    for col in range(ws[q], we[q]):
                        spread[col] += share
                for hh in range(hs[p], he[p]):
                    row = total[hh]
                    for col in range(w):
                        row[col] += spread[col]
            for hh in range(h):
                for col in range(w):
                    grad[hh, col] = total[hh, col] * x[b, ch, hh, col] if mode == 2 else total[hh, col]


def pool2d_output_numba(x, mode, kernel, stride, padding, out_hw, count_include_pad):
    """``(out, argmax)`` for a validated NumPy ``x``; ``argmax`` (max pool only, else None) indexes the
    flattened H*W plane. ``mode`` in ``{'max', 'avg', 'l2'}``; ``padding`` (top, bottom, left, right)."""
    x = np.ascontiguousarray(x)
    out = np.empty(x.shape[:2] + tuple(out_hw), dtype=x.dtype)
    argmax = None
    with single_thread_below(x.size + out.size, MEMORY_BOUND_WORK):
        if mode == "max":
            argmax = np.empty(out.shape, dtype=np.int64)
            _max_pool_argmax_forward(x, *kernel, *stride, padding[0], padding[2], out, argmax)
        else:
            _sum_pool_forward(x, _MODES[mode], *_both_windows(x.shape, out.shape[2:], kernel, stride, padding,
                                                              count_include_pad), out)
    return out, argmax


def pool2d_dx_numba(dout, x, out, argmax, mode, kernel, stride, padding, count_include_pad):
    """``dx`` of :func:`pool2d_output_numba` for a validated ``dout``: ``out`` is needed by L2 pooling,
    ``argmax`` by max pooling (None otherwise); the other arguments as given to the forward."""
    x = np.ascontiguousarray(x)
    dx = np.empty_like(x)
    with single_thread_below(x.size + dout.size, MEMORY_BOUND_WORK):
        if mode == "max":
            _max_pool_backward(np.ascontiguousarray(dout), argmax, dx)
        else:
            out = out if out is not None else np.empty((1, 1, 1, 1), dtype=x.dtype)
            _sum_pool_backward(np.ascontiguousarray(dout), x, out, _MODES[mode],
                               *_both_windows(x.shape, dout.shape[2:], kernel, stride, padding, count_include_pad),
                               dx)
    return dx


def _both_windows(x_shape, out_hw, kernel, stride, padding, include_pad):
    """``(rows, cols)``: ``_windows`` along H and W."""
    return (_windows(out_hw[0], stride[0], padding[0], kernel[0], x_shape[2], padding[1], include_pad),
            _windows(out_hw[1], stride[1], padding[2], kernel[1], x_shape[3], padding[3], include_pad))


def max_pool2d_values_numba(x, kernel, stride, padding, out_hw):
    """Max pooling's ``out`` only (no argmax: inference) for a validated NumPy ``x``; arguments as
    :func:`pool2d_output_numba`'s."""
    x = np.ascontiguousarray(x)
    out = np.empty(x.shape[:2] + tuple(out_hw), dtype=x.dtype)
    with single_thread_below(x.size + out.size):                 # inference (MTCNN): SMALL_WORK, as before
        _max_pool_forward(x, kernel[0], kernel[1], stride[0], stride[1], padding[0], padding[2], out)
    return out
