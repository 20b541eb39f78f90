"""Numba kernels for Max-Margin Object Detection: the filter correlation and a greedy NMS with eligibility.

The readable versions are :func:`scratchface.detection.mmod_scan.correlate_cells_reference`
and :func:`scratchface.detection.mmod_scan.greedy_select_reference`; these do the same
arithmetic without temporaries:

* ``correlate_planes_numba``: the grid stored feature-first, ``(D, R, C)`` float32 (as dlib
  stores its FHOG planes), so each filter weight ``F[u, v, d]`` multiplies a whole
  row of plane ``d`` into a row of the output: an axpy along contiguous memory,
  which Numba vectorises (float32: twice the numbers per SIMD register of float64;
  equal to the float64 reference to float32 precision), five filter columns per
  pass (one load and store of the output row per five products: 1.6-2.3 times
  faster than one column per pass). Parallel over the output rows.
* ``greedy_select_numba``: boxes walked in score order, each compared with the
  boxes kept so far (few: the overlap test of MMOD is strict).
* ``resize_bilinear_numba``: :func:`scratchface.detection.pyramid.resize` without
  anti-aliasing (a pyramid step of 5/6 needs none), the same two interpolations per
  pixel in the same order (bitwise equal), parallel over the output rows; the vertical
  interpolation of each source column done once per output row into a float64 row buffer.

This module imports Numba; :mod:`scratchface.detection.mmod_scan` imports it lazily.
"""
from __future__ import annotations

import numba
import numpy as np

__all__ = ["correlate_planes_numba", "greedy_select_numba", "resize_bilinear_numba"]


@numba.njit(cache=True, parallel=True, fastmath=True)
def correlate_planes_numba(planes, filt):
    """``out[r, c] = sum_{d, u, v} planes[d, r + u, c + v] * filt[u, v, d]``, one plane at a time.

    Parameters
    ----------
    planes : float32 C-contiguous array, shape (D, R, C): the grid with its features first
    filt : float32 array, shape (n, m, D), ``n <= R``, ``m <= C``

    Returns
    -------
    out : float32 array, shape (R - n + 1, C - m + 1)
    """
    depth, n_rows, n_cols = planes.shape
    n, m = filt.shape[0], filt.shape[1]
    out_rows, out_cols = n_rows - n + 1, n_cols - m + 1
    out = np.zeros((out_rows, out_cols), dtype=planes.dtype)
    for r in numba.prange(out_rows):
        acc = out[r]
        for d in range(depth):
            for u in range(n):
                source = planes[d, r + u]
                v = 0
                while v + 5 <= m:      # five filter columns per pass: one load / store of acc per 5 products
                    w0, w1, w2 = filt[u, v, d], filt[u, v + 1, d], filt[u, v + 2, d]
                    w3, w4 = filt[u, v + 3, d], filt[u, v + 4, d]
                    for c in range(out_cols):      # along the row: vectorised
                        acc[c] += (source[c + v] * w0 + source[c + v + 1] * w1 + source[c + v + 2] * w2
                                   + source[c + v + 3] * w3 + source[c + v + 4] * w4)
                    v += 5
                while v < m:
                    weight = filt[u, v, d]
                    for c in range(out_cols):
                        acc[c] += source[c + v] * weight
                    v += 1
    return out


@numba.njit(cache=True)
def _overlaps(ax1, ay1, ax2, ay2, bx1, by1, bx2, by2, iou_threshold, cover_threshold):
    iw = min(ax2, bx2) - max(ax1, bx1)
    ih = min(ay2, by2) - max(ay1, by1)
    if iw <= 0.0 or ih <= 0.0:
        return False
    inter = iw * ih
    area_a = (ax2 - ax1) * (ay2 - ay1)
    area_b = (bx2 - bx1) * (by2 - by1)
    if inter / (area_a + area_b - inter) > iou_threshold:
        return True
    return inter / area_a > cover_threshold or inter / area_b > cover_threshold


@numba.njit(cache=True)
def greedy_select_numba(boxes, order, eligible, iou_threshold, cover_threshold):
    """Indices kept by greedy NMS over the eligible boxes, in ``order``.

    A box is dropped when it overlaps a kept box: IoU above ``iou_threshold``
    or the intersection above ``cover_threshold`` of either box's area.
    """
    n = order.shape[0]
    kept = np.empty(n, dtype=np.int64)
    n_kept = 0
    for s in range(n):
        i = order[s]
        if not eligible[i]:
            continue
        free = True
        for k in range(n_kept):
            j = kept[k]
            if _overlaps(boxes[i, 0], boxes[i, 1], boxes[i, 2], boxes[i, 3],
                         boxes[j, 0], boxes[j, 1], boxes[j, 2], boxes[j, 3], iou_threshold, cover_threshold):
                free = False
                break
        if free:
            kept[n_kept] = i
            n_kept += 1
    return kept[:n_kept].copy()


@numba.njit(cache=True, parallel=True)
def resize_bilinear_numba(image, r_lo, r_hi, r_w, c_lo, c_hi, c_w):
    """Bilinear resize of ``(H, W, channels)`` with the source indices and weights of each axis.

    ``out[y, x] = v(c_lo) + (v(c_hi) - v(c_lo)) c_w[x]`` with
    ``v(c) = image[r_lo[y], c] + (image[r_hi[y], c] - image[r_lo[y], c]) r_w[y]``.
    """
    rows, cols, channels = r_lo.shape[0], c_lo.shape[0], image.shape[2]
    width = image.shape[1]
    out = np.empty((rows, cols, channels), dtype=image.dtype)
    for y in numba.prange(rows):
        top, bottom, wy = image[r_lo[y]].ravel(), image[r_hi[y]].ravel(), r_w[y]
        column = np.empty(width * channels)   # v(c) of every source column, once, in float64 as before
        for i in range(width * channels):     # contiguous: vectorised
            column[i] = top[i] + (bottom[i] - top[i]) * wy
        v = column.reshape(width, channels)
        for x in range(cols):
            a, b, wx = c_lo[x], c_hi[x], c_w[x]
            for ch in range(channels):
                left, right = v[a, ch], v[b, ch]
                out[y, x, ch] = left + (right - left) * wx
    return out
