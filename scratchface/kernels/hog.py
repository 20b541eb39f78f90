"""Numba kernels for HOG: gradients, orientation votes and block norms fused in two passes.

The readable steps are in :mod:`scratchface.detection.hog`; these kernels do
the same arithmetic without the intermediate full-size arrays:

* ``hog_cell_histograms_numba``: one parallel pass over the rows of cells; each pixel's
  central differences (per channel, keeping the channel of largest
  magnitude), its magnitude and orientation, and its vote are computed in
  registers and added to its cell's histogram.
* ``hog_normalize_blocks_numba``: one serial pass over the blocks.

This module imports Numba; it is imported lazily by ``hog(impl='auto')``.
"""
from __future__ import annotations

import math

import numba
import numpy as np

__all__ = ["BINNING_CODES", "NORM_CODES", "hog_cell_histograms_numba", "hog_normalize_blocks_numba"]

BINNING_CODES = {"hard": 0, "bilinear": 1}
NORM_CODES = {"L1": 0, "L1-sqrt": 1, "L2": 2, "L2-Hys": 3}
_RAD2DEG = 180.0 / math.pi


@numba.njit(cache=True, inline="always")
def _hard_bin_exact(theta, edges, orientations):
    """Index of the bin ``[edges[k], edges[k+1])`` holding ``theta`` (``orientations``: none)."""
    k = int(theta / (180.0 / orientations))
    k = min(k, orientations)
    while k < orientations and theta >= edges[k + 1]:
        k += 1
    while k > 0 and theta < edges[k]:
        k -= 1
    return k


@numba.njit(cache=True, parallel=True)
def hog_cell_histograms_numba(image, c_row, c_col, orientations, binning, tie_rtol=1e-12):
    """Cell histograms (mean vote per pixel) of an ``(H, W, C)`` float image.

    Same result as ``image_gradients`` / ``dominant_channel_gradients`` ->
    ``magnitude_orientation`` -> ``cell_histograms`` of the reference.
    ``tie_rtol``: channels whose squared magnitudes are this close are
    compared by ``hypot`` in the image's precision, as the reference does
    (use about 1e-6 for float32 images, where ``hypot`` rounds to single).

    Hard binning without ``atan2``: after turning the gradient into the upper
    half plane (orientation is unsigned), ``theta >= e`` exactly when the
    cross product ``g_row cos(e) - g_col sin(e)`` is >= 0, so the bin is found
    by comparing with the edges' unit vectors. Only when a gradient lies
    within 1e-9 (relative) of an edge is ``atan2`` evaluated, so that pixels
    on an edge land where the reference (and scikit-image) put them. Numba's
    ``atan2`` is the C library's; NumPy 2's SIMD ``arctan2`` on AVX-512 machines
    differs from it by about an ulp, so there a gradient within 1e-13 degrees of
    an edge (45 or 135 degrees on uint8 images) can land in the neighbouring bin
    (``tests/test_hog.py``: equal to scikit-image run with libm's ``atan2``).
    """
    height, width, n_channels = image.shape
    n_rows, n_cols = height // c_row, width // c_col
    # hard-bin edges rounded to single precision, as scikit-image has them
    step32 = np.float32(180.0 / orientations)
    edges = np.empty(orientations + 1)
    cos_e = np.empty(orientations + 1)
    sin_e = np.empty(orientations + 1)
    for k in range(orientations + 1):
        edges[k] = np.float64(step32 * np.float32(k))
        cos_e[k] = math.cos(edges[k] / _RAD2DEG)
        sin_e[k] = math.sin(edges[k] / _RAD2DEG)
    width_bin = 180.0 / orientations
    hist = np.zeros((n_rows, n_cols, orientations))
    for i in numba.prange(n_rows):
        for r in range(i * c_row, (i + 1) * c_row):
            for j in range(n_cols):
                for c in range(j * c_col, (j + 1) * c_col):
                    best = -1.0
                    g_r = image[r, c, 0] - image[r, c, 0]  # a zero of the image dtype
                    g_c = g_r
                    for ch in range(n_channels):
                        dr = image[r, c, ch] - image[r, c, ch]
                        dc = dr
                        if 0 < r < height - 1:
                            dr = image[r + 1, c, ch] - image[r - 1, c, ch]
                        if 0 < c < width - 1:
                            dc = image[r, c + 1, ch] - image[r, c - 1, ch]
                        if n_channels == 1:
                            g_r, g_c = dr, dc
                        else:
                            # the reference takes the argmax of hypot; squares order the
                            # same way except within rounding, where hypot decides
                            m2 = np.float64(dr) * dr + np.float64(dc) * dc
                            if m2 > best * (1.0 + tie_rtol):
                                best, g_r, g_c = m2, dr, dc
                            elif m2 > best * (1.0 - tie_rtol):
                                if math.hypot(dr, dc) > math.hypot(g_r, g_c):
                                    best, g_r, g_c = m2, dr, dc
                    gr64, gc64 = np.float64(g_r), np.float64(g_c)
                    mag = math.sqrt(gc64 * gc64 + gr64 * gr64)
                    if mag == 0.0:
                        continue
                    if binning == 0:
                        # unsigned orientation: flip into the upper half plane
                        ur, uc = (gr64, gc64) if gr64 > 0.0 else (-gr64, -gc64)
                        tol = 1e-9 * mag
                        k = 0
                        near_edge = False
                        while k < orientations:
                            cross = ur * cos_e[k + 1] - uc * sin_e[k + 1]
                            if abs(cross) <= tol:
                                near_edge = True
                                break
                            if cross < 0.0:
                                break
                            k += 1
                        if near_edge or abs(ur * cos_e[0] - uc * sin_e[0]) <= tol:
                            theta = (math.atan2(gr64, gc64) * _RAD2DEG) % 180.0
                            k = _hard_bin_exact(theta, edges, orientations)
                        if k < orientations:
                            hist[i, j, k] += mag
                    else:
                        theta = (math.atan2(gr64, gc64) * _RAD2DEG) % 180.0
                        position = theta / width_bin
                        lower = math.floor(position)
                        w_up = position - lower
                        lo = int(lower) % orientations
                        hi = (lo + 1) % orientations
                        hist[i, j, lo] += (1.0 - w_up) * mag
                        hist[i, j, hi] += w_up * mag
        area = c_row * c_col
        for j in range(n_cols):
            for k in range(orientations):
                hist[i, j, k] /= area
    return hist


@numba.njit(cache=True)
def hog_normalize_blocks_numba(hist, b_row, b_col, norm, eps):
    """Blocks ``(n_blocks_row, n_blocks_col, b_row, b_col, orientations)``, each normalised.

    Serial on purpose: it is about 1 ms for a 512 x 512 image, less than the
    cost of waking a thread pool (measured: 38 ms per call under load with
    ``parallel=True`` on small pyramid levels).
    """
    n_rows, n_cols, n_orient = hist.shape
    nb_row, nb_col = n_rows - b_row + 1, n_cols - b_col + 1
    out = np.empty((nb_row, nb_col, b_row, b_col, n_orient))
    for r in range(nb_row):
        for c in range(nb_col):
            total = 0.0
            for u in range(b_row):
                for v in range(b_col):
                    for k in range(n_orient):
                        x = hist[r + u, c + v, k]
                        total += abs(x) if norm <= 1 else x * x
            if norm <= 1:
                scale = 1.0 / (total + eps)
            else:
                scale = 1.0 / math.sqrt(total + eps * eps)
            total2 = 0.0
            for u in range(b_row):
                for v in range(b_col):
                    for k in range(n_orient):
                        y = hist[r + u, c + v, k] * scale
                        if norm == 1:
                            y = math.sqrt(y)
                        elif norm == 3:
                            y = min(y, 0.2)
                            total2 += y * y
                        out[r, c, u, v, k] = y
            if norm == 3:
                scale2 = 1.0 / math.sqrt(total2 + eps * eps)
                for u in range(b_row):
                    for v in range(b_col):
                        for k in range(n_orient):
                            out[r, c, u, v, k] *= scale2
    return out
