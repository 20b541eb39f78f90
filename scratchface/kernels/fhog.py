"""Numba kernel for FHOG (Felzenszwalb's 31-number cell descriptor), three parallel passes.

The readable version is :func:`scratchface.detection.fhog_features.fhog_reference`; this
does the same arithmetic (the same snapping, votes and clipping, sums in
another order: equal to about 1e-13 relative):

1. per pixel row (parallel): gradient (channel of largest magnitude), snapped
   orientation and magnitude;
2. per cell row (parallel): the bilinear votes of the pixel rows that reach it
   (each thread writes only its own cell row, so no two threads add to one cell);
3. per cell row (parallel): block norms and the 3 o + 4 features.

This module imports Numba; :func:`scratchface.detection.fhog_features.fhog` imports it lazily.
"""
from __future__ import annotations

import math

import numba
import numpy as np

__all__ = ["fhog_numba"]


@numba.njit(cache=True, parallel=True)
def _orientations_and_magnitudes(image, ux, uy):
    height, width, channels = image.shape
    bins = np.zeros((height, width), dtype=np.int32)
    magnitude = np.zeros((height, width))
    n_bins = ux.shape[0]
    for y in numba.prange(1, height - 1):
        for x in range(1, width - 1):
            best_gx, best_gy, best_sq = 0.0, 0.0, -1.0
            for ch in range(channels):
                gx = image[y, x + 1, ch] * 255.0 - image[y, x - 1, ch] * 255.0
                gy = image[y + 1, x, ch] * 255.0 - image[y - 1, x, ch] * 255.0
                sq = gx * gx + gy * gy
                if sq > best_sq:
                    best_gx, best_gy, best_sq = gx, gy, sq
            best, best_dot = 0, -np.inf
            for o in range(n_bins):     # u_{o + n_bins} = -u_o: one dot product gives two directions
                dot = ux[o] * best_gx + uy[o] * best_gy
                if dot > best_dot:
                    best, best_dot = o, dot
                if -dot > best_dot:
                    best, best_dot = o + n_bins, -dot
            bins[y, x] = best
            magnitude[y, x] = math.sqrt(best_gx * best_gx + best_gy * best_gy)
    return bins, magnitude


@numba.njit(cache=True, parallel=True)
def _cell_histograms(bins, magnitude, cell, n_bins):
    height, width = bins.shape
    rows, cols = height // cell, width // cell
    hist = np.zeros((rows, cols, n_bins))
    for r in numba.prange(rows):
        for y in range(max(0, (r - 1) * cell), min(height, (r + 2) * cell)):
            yp = (y + 0.5) / cell - 0.5
            iy = math.floor(yp)
            fy = yp - iy
            if iy == r:
                wy = 1.0 - fy
            elif iy + 1 == r:
                wy = fy
            else:
                continue
            for x in range(width):
                v = magnitude[y, x]
                if v == 0.0:
                    continue
                xp = (x + 0.5) / cell - 0.5
                ix = math.floor(xp)
                fx = xp - ix
                o = bins[y, x]
                if ix >= 0 and ix < cols:
                    hist[r, ix, o] += wy * (1.0 - fx) * v
                if ix + 1 >= 0 and ix + 1 < cols:
                    hist[r, ix + 1, o] += wy * fx * v
    return hist


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
    for y in numba.prange(rows):
        for x in range(cols):
            for k in range(4):
                a, b = k % 2, k // 2          # blocks (0, 0), (1, 0), (0, 1), (1, 1) around the cell
                i, j = y + a, x + b
                n = 1.0 / math.sqrt(energy[i, j] + energy[i + 1, j] + energy[i, j + 1] + energy[i + 1, j + 1] + eps)
                texture = 0.0
                for q in range(2 * o):
                    t = min(hist[y, x, q] * n, 0.2)
                    out[y, x, q] += 0.5 * t
                    texture += t
                for q in range(o):
                    out[y, x, 2 * o + q] += 0.5 * min((hist[y, x, q] + hist[y, x, q + o]) * n, 0.2)
                out[y, x, 3 * o + k] = 0.2357 * texture
    return out


def fhog_numba(image, cell, orientations, eps, dtype=np.float64):
    """FHOG of a float32 / float64 C-contiguous ``(H, W, channels)`` image on 0..1: ``(H // cell, W // cell, 3 o + 4)``.

    float64: a C-contiguous array; float32: a view of a feature-first ``(3 o + 4, rows, cols)`` buffer.
    """
    theta = np.arange(orientations) * np.pi / orientations
    bins, magnitude = _orientations_and_magnitudes(image, np.cos(theta), np.sin(theta))
    hist = _cell_histograms(bins, magnitude, cell, 2 * orientations)
    shape = (hist.shape[0], hist.shape[1], 3 * orientations + 4)
    if dtype == np.float64:
        out = np.zeros(shape)
    else:
        out = np.zeros((shape[2], shape[0], shape[1]), dtype=dtype).transpose(1, 2, 0)
    _features(hist, orientations, eps, out)
    return out
