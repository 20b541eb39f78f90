"""Numba kernels for Max-Margin Object Detection: the filter correlation and a greedy NMS with eligibility.

The readable versions are :func:`scratchface.detection.mmod_scan.correlate_cells_reference`
and :func:`scratchface.detection.mmod_scan.greedy_select_reference`; these do the same
arithmetic without temporaries:

* ``correlate_cells_numba``: for a window at ``(r, c)`` and filter row ``u``, the
  cells ``c .. c + m - 1`` of grid row ``r + u`` lie next to each other in memory
  (``m * D`` numbers), as does the filter's row ``u``: each term is one
  contiguous dot product, which ``fastmath`` lets Numba vectorise (sums reassociated:
  equal to the reference to about 1e-13 relative). Parallel over the output rows.
* ``greedy_select_numba``: boxes walked in score order, each compared with the
  boxes kept so far (few: the overlap test of MMOD is strict).

This module imports Numba; :mod:`scratchface.detection.mmod_scan` imports it lazily.
"""
from __future__ import annotations

import numba
import numpy as np

__all__ = ["correlate_cells_numba", "greedy_select_numba"]


@numba.njit(cache=True, parallel=True, fastmath=True)
def correlate_cells_numba(grid, filt):
    """``out[r, c] = sum_{u, v, d} grid[r + u, c + v, d] * filt[u, v, d]``.

    Parameters
    ----------
    grid : float64 C-contiguous array, shape (R, C, D)
    filt : float64 C-contiguous array, shape (n, m, D), ``n <= R``, ``m <= C``

    Returns
    -------
    out : float64 array, shape (R - n + 1, C - m + 1)
    """
    n_rows, n_cols, depth = grid.shape
    n, m = filt.shape[0], filt.shape[1]
    out_rows, out_cols = n_rows - n + 1, n_cols - m + 1
    g = grid.reshape(n_rows, n_cols * depth)
    f = filt.reshape(n, m * depth)
    span = m * depth
    out = np.zeros((out_rows, out_cols))
    for r in numba.prange(out_rows):
        for u in range(n):
            row = g[r + u]
            fu = f[u]
            for c in range(out_cols):
                start = c * depth
                acc = 0.0
                for k in range(span):
                    acc += row[start + k] * fu[k]
                out[r, c] += acc
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
