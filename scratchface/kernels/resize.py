"""Numba kernels for area resizing of many image regions from a summed-area table (NumPy arrays only).

MTCNN resizes the whole image once per pyramid level and every R-Net / O-Net
candidate box to 24x24 or 48x48, then normalises the pixels and moves the
channels first (NCHW). The NumPy version (:func:`scratchface.detection.pyramid.area_resize_regions`)
gathers the four corners of every window from the table with ``np.take``
(four arrays as large as the output, and index arrays beside them) and then
makes three more passes (normalise, transpose, copy). This kernel computes each
output value in one place, parallel over output rows, with the same float64
sums and the same float32 divisions, so the values are identical.

The table itself (:func:`summed_area_table_numba`, for
:func:`scratchface.detection.pyramid.summed_area_table`): each row's running sums along
the row (parallel over rows), then each row plus the one above it (parallel over columns),
the additions of the NumPy version in the same order, so the same bits: 73 -> 24 ms on
bald_guys.jpg (1986 x 1545 x 3, 2 threads), where NumPy's ``cumsum`` along a middle axis
took 61 ms.

The validated entry points are :func:`scratchface.detection.pyramid.area_resize_regions_nchw`
and :func:`scratchface.detection.pyramid.summed_area_table`, which import this module lazily
(it imports Numba).
"""
from __future__ import annotations

import numba
import numpy as np
from numba import prange

from ._numba import single_thread_below

__all__ = ["area_resize_regions_numba", "summed_area_table_numba"]


@numba.njit(cache=True, parallel=True)
def _area_resize_nchw(sat, top, left, height, width, shift, scale, out):
    """``out[k, c, i, j] = (window sum / kh / kw - shift) * scale``, every operation as the NumPy version."""
    n, channels, out_h, out_w = out.shape
    for t in prange(n * out_h):
        k = t // out_h
        i = t % out_h
        y0 = top[k] + (i * height[k]) // out_h
        y1 = top[k] - ((-(i + 1) * height[k]) // out_h)
        kh = np.float32(y1 - y0)
        for j in range(out_w):
            x0 = left[k] + (j * width[k]) // out_w
            x1 = left[k] - ((-(j + 1) * width[k]) // out_w)
            kw = np.float32(x1 - x0)
            for c in range(channels):
                s = sat[y1, x1, c] - sat[y0, x1, c] - sat[y1, x0, c] + sat[y0, x0, c]
                v = np.float32(s) / kh / kw
                out[k, c, i, j] = (v - shift) * scale


def area_resize_regions_numba(sat, top, left, height, width, out_h, out_w, shift, scale):
    """(n, C, out_h, out_w) float32 from a float64 table ``sat`` (H + 1, W + 1, C) and int64 regions (n,)."""
    n = len(top)
    out = np.empty((n, sat.shape[2], out_h, out_w), dtype=np.float32)
    if n == 0:
        return out
    with single_thread_below(out.size):
        _area_resize_nchw(np.ascontiguousarray(sat, dtype=np.float64), *(np.ascontiguousarray(a, dtype=np.int64)
                          for a in (top, left, height, width)), np.float32(shift), np.float32(scale), out)
    return out


@numba.njit(cache=True, parallel=True)
def _summed_area_table(image, sat):
    height, width, channels = image.shape
    for y in prange(height):                      # running sums along each row
        row, out = image[y], sat[y + 1]
        for c in range(channels):
            out[0, c] = 0.0
            acc = 0.0
            for x in range(width):
                acc += row[x, c]
                out[x + 1, c] = acc
    flat = sat.reshape(height + 1, (width + 1) * channels)
    flat[0, :] = 0.0
    n = flat.shape[1]
    blocks = min(n, 64)
    for b in prange(blocks):                      # each row plus the one above, columns in blocks
        for y in range(1, height + 1):
            above, here = flat[y - 1], flat[y]
            for i in range(b * n // blocks, (b + 1) * n // blocks):
                here[i] += above[i]


def summed_area_table_numba(image):
    """``S (H + 1, W + 1, C)`` float64 of an ``(H, W, C)`` array: ``S[r, c] = sum(image[:r, :c])``."""
    image = np.ascontiguousarray(image)
    sat = np.empty((image.shape[0] + 1, image.shape[1] + 1, image.shape[2]))
    with single_thread_below(image.size):
        _summed_area_table(image, sat)
    return sat
