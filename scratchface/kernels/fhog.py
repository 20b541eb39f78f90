"""Numba kernel for FHOG (Felzenszwalb's 31-number cell descriptor), two parallel passes.

The readable version is :func:`scratchface.detection.fhog_features.fhog_reference`; this
does the same arithmetic (the same snapping, votes and clipping, sums in
another order: equal to about 1e-13 relative):

1. per band of pixel rows voting into the same pair of cell rows (parallel), row by row:
   the rows copied channel-first into a rolling 3-row buffer (contiguous loads), gradient
   (channel of largest magnitude), snapped orientation (the 9 dot products as
   compare-and-select loops along the row, which vectorise) and magnitude into row
   buffers, then the bilinear votes: along the row into one cell-row histogram (two
   adds per pixel, no bounds tests: the buffer has a cell of margin each side), which
   is then added to the two cell rows with the row's weights ``1 - fy`` and ``fy``
   (a vectorised pass per row instead of four scattered adds per pixel: 1.42 s -> 1.17 s
   for the whole MMOD scan of bald_guys.jpg at upsample 1, 2 threads). Each band writes
   its own two partial cell rows, so no two threads add to one cell; nothing of image size
   is stored (the former separate orientation and vote passes wrote and re-read two
   image-size arrays);
2. per cell row (parallel): block norms and the 3 o + 4 features, summed in float64 per cell
   and stored once.

This module imports Numba; :func:`scratchface.detection.fhog_features.fhog` imports it lazily.
"""
from __future__ import annotations

import math

import numba
import numpy as np

__all__ = ["fhog_numba"]


@numba.njit(cache=True)
def _deinterleave(image, y, buf, slot):
    """Pixel row ``y`` of an ``(H, W, channels)`` image into ``buf[slot]``, channel-first ``(channels, W)``."""
    row = image[y]
    for ch in range(image.shape[2]):
        plane = buf[slot, ch]
        for x in range(image.shape[1]):
            plane[x] = row[x, ch]


@numba.njit(cache=True)
def _row_gradients(up, row, down, ux, uy, gx, gy, best_dot, bins, magnitude):
    """Gradient, snapped orientation and magnitude of a pixel row (interior columns), branch-free loops.

    ``up``, ``row``, ``down``: the rows ``y - 1, y, y + 1``, channel-first ``(channels, W)``
    (contiguous loads: the loops along the row vectorise).
    """
    channels, width = row.shape
    for ch in range(channels):         # the channel of largest magnitude (the first one on ties)
        r, u, d = row[ch], up[ch], down[ch]
        for x in range(1, width - 1):
            cx = r[x + 1] * 255.0 - r[x - 1] * 255.0
            cy = d[x] * 255.0 - u[x] * 255.0
            sq = cx * cx + cy * cy
            better = ch == 0 or sq > magnitude[x]
            gx[x] = cx if better else gx[x]
            gy[x] = cy if better else gy[x]
            magnitude[x] = sq if better else magnitude[x]
    for x in range(1, width - 1):
        magnitude[x] = math.sqrt(magnitude[x])
        best_dot[x] = -np.inf
        bins[x] = 0
    n_bins = ux.shape[0]
    for o in range(n_bins):            # u_{o + n_bins} = -u_o: one dot product gives two directions
        for x in range(1, width - 1):  # compare-and-select along the row (vectorised), same order as a loop per pixel
            dot = ux[o] * gx[x] + uy[o] * gy[x]
            b0, d0 = bins[x], best_dot[x]
            b, d = (o, dot) if dot > d0 else (b0, d0)
            b, d = (o + n_bins, -dot) if -dot > d else (b, d)
            bins[x], best_dot[x] = b, d


@numba.njit(cache=True, parallel=True)
def _cell_histograms(image, cell, ux, uy):
    """Steps 1-3 fused, one pass over the pixels: signed bilinear histograms ``(rows, cols, 2 o)``.

    Pixel row ``y`` votes into cell rows ``iy`` (weight ``1 - fy``) and ``iy + 1`` (``fy``): its votes
    along the row go to ``row_hist`` (column ``c + 1`` holds cell column ``c``), then to both rows. The
    band of pixel rows with the same ``iy`` is one parallel task: its votes into ``iy`` go to
    ``lower[iy]``, into ``iy + 1`` to ``upper[iy + 1]``, rows no other task writes; the
    histograms are ``lower + upper``. Per-row buffers: nothing of image size is stored.
    """
    height, width = image.shape[0], image.shape[1]
    rows, cols, n_bins = height // cell, width // cell, 2 * ux.shape[0]
    lower = np.zeros((rows + 1, cols, n_bins))
    upper = np.zeros((rows + 1, cols, n_bins))
    # column weights: x sits at xp = (x + 1/2) / cell - 1/2 = ix + fx
    ix = np.empty(width, dtype=np.int64)
    fx = np.empty(width)
    for x in range(width):
        xp = (x + 0.5) / cell - 0.5
        ix[x] = math.floor(xp)
        fx[x] = xp - ix[x]
    for band in numba.prange(rows + 1):       # band b: pixel rows with iy = b - 1
        iy = band - 1
        # floor((y + 1/2) / cell - 1/2) = iy  <=>  (2 iy + 1) cell <= 2 y + 1 < (2 iy + 3) cell
        y0 = max(1, (2 * iy + 1) * cell // 2)
        y1 = min(height - 1, (2 * iy + 3) * cell // 2)
        gx, gy = np.zeros(width), np.zeros(width)
        best_dot, magnitude = np.empty(width), np.zeros(width)
        bins = np.zeros(width, dtype=np.int64)
        row_hist = np.zeros((cols + 3, n_bins))   # cell columns -1 .. cols + 1 (votes off the grid dropped)
        buf = np.empty((3, image.shape[2], width), dtype=image.dtype)   # rows y - 1, y, y + 1, rolling
        for y in range(y0 - 1, min(y0 + 1, height)):
            _deinterleave(image, y, buf, y % 3)
        for y in range(y0, y1):
            _deinterleave(image, y + 1, buf, (y + 1) % 3)
            yp = (y + 0.5) / cell - 0.5
            if math.floor(yp) != iy:           # a guard: the band's rows are found above
                continue
            fy = yp - iy
            _row_gradients(buf[(y - 1) % 3], buf[y % 3], buf[(y + 1) % 3], ux, uy, gx, gy, best_dot, bins, magnitude)
            row_hist[:] = 0.0
            for x in range(1, width - 1):
                v = magnitude[x]
                o, c = bins[x], ix[x] + 1
                row_hist[c, o] += (1.0 - fx[x]) * v
                row_hist[c + 1, o] += fx[x] * v
            if iy >= 0:
                dst = lower[iy]
                for c in range(cols):
                    for o in range(n_bins):
                        dst[c, o] += (1.0 - fy) * row_hist[c + 1, o]
            if iy + 1 < rows:
                dst = upper[iy + 1]
                for c in range(cols):
                    for o in range(n_bins):
                        dst[c, o] += fy * row_hist[c + 1, o]
    return lower[:rows] + upper[:rows]


@numba.njit(cache=True, parallel=True)
def _features(hist, orientations, eps, out):
    rows, cols = hist.shape[0], hist.shape[1]
    o = orientations
    energy = np.zeros((rows + 2, cols + 2))
    for y in numba.prange(rows):
        for x in range(cols):
            s = 0.0
            for k in range(o):
                u = hist[y, x, k] + hist[y, x, k + o]
                s += u * u
            energy[y + 1, x + 1] = s
    depth = out.shape[2]
    for y in numba.prange(rows):
        acc = np.empty(depth)              # one cell's features in float64, stored once (out may be float32, strided)
        for x in range(cols):
            acc[:] = 0.0
            for k in range(4):
                a, b = k % 2, k // 2          # blocks (0, 0), (1, 0), (0, 1), (1, 1) around the cell
                i, j = y + a, x + b
                n = 1.0 / math.sqrt(energy[i, j] + energy[i + 1, j] + energy[i, j + 1] + energy[i + 1, j + 1] + eps)
                texture = 0.0
                for q in range(2 * o):
                    t = min(hist[y, x, q] * n, 0.2)
                    acc[q] += 0.5 * t
                    texture += t
                for q in range(o):
                    acc[2 * o + q] += 0.5 * min((hist[y, x, q] + hist[y, x, q + o]) * n, 0.2)
                acc[3 * o + k] = 0.2357 * texture
            for q in range(depth):
                out[y, x, q] = acc[q]
    return out


def fhog_numba(image, cell, orientations, eps, dtype=np.float64):
    """FHOG of a float32 / float64 C-contiguous ``(H, W, channels)`` image on 0..1: ``(H // cell, W // cell, 3 o + 4)``.

    float64: a C-contiguous array; float32: a view of a feature-first ``(3 o + 4, rows, cols)`` buffer.
    """
    theta = np.arange(orientations) * np.pi / orientations
    hist = _cell_histograms(image, cell, np.cos(theta), np.sin(theta))
    shape = (hist.shape[0], hist.shape[1], 3 * orientations + 4)
    if dtype == np.float64:
        out = np.empty(shape)
    else:
        out = np.empty((shape[2], shape[0], shape[1]), dtype=dtype).transpose(1, 2, 0)
    _features(hist, orientations, eps, out)
    return out
