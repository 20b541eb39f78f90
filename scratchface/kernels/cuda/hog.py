"""HOG cell histograms on the GPU: one thread per cell, the whole pixel pipeline in registers.

Same arithmetic as the readable steps of :mod:`scratchface.detection.hog`
(and the Numba CPU kernel :mod:`scratchface.kernels.hog`): for each pixel of
its cell a thread takes the central differences of every channel (zero on the
image border, no division by 2), keeps the channel of largest magnitude,
computes the magnitude and the unsigned orientation in degrees, and adds the
vote to its cell's histogram -- the whole magnitude into one bin
(``binning`` 0, 'hard', scikit-image's bins with edges rounded to single
precision, passed in as ``edges``) or split linearly between the two nearest
bin centres (``binning`` 1, 'bilinear', Dalal & Triggs). Each thread owns its
cell's histogram, so there are no atomics and the result is deterministic;
the sum is divided by the cell area (the *mean* vote, as scikit-image).

The block normalisation is a few array operations on a small array and is
left to CuPy.

Host wrapper (CuPy arrays): :func:`hog_cell_histograms_cuda`.
"""
from __future__ import annotations

import math

import numpy as np
from numba import cuda

from ..._validation import check_array, check_choice, check_int_pair
from ._launch import array_module, blocks_for, launch

__all__ = ["cell_histograms_kernel", "hog_cell_histograms_cuda", "BINNING_CODES"]

BINNING_CODES = {"hard": 0, "bilinear": 1}   # the ``binning`` argument of the kernel

_RAD2DEG = 180.0 / math.pi


@cuda.jit(cache=True)
def cell_histograms_kernel(image, c_row, c_col, edges, binning, hist):
    """``hist (n_rows, n_cols, orientations)`` float64 from ``image (H, W, C)``; one thread per cell."""
    height, width, n_channels = image.shape
    n_rows, n_cols, orientations = hist.shape
    cell = cuda.grid(1)
    if cell >= n_rows * n_cols:
        return
    ci = cell // n_cols
    cj = cell - ci * n_cols
    for k in range(orientations):
        hist[ci, cj, k] = 0.0
    width_bin = 180.0 / orientations
    for r in range(ci * c_row, (ci + 1) * c_row):
        for c in range(cj * c_col, (cj + 1) * c_col):
            g_r = 0.0
            g_c = 0.0
            best = -1.0
            for ch in range(n_channels):
                dr = 0.0
                dc = 0.0
                if 0 < r < height - 1:
                    dr = image[r + 1, c, ch] - image[r - 1, c, ch]
                if 0 < c < width - 1:
                    dc = image[r, c + 1, ch] - image[r, c - 1, ch]
                m = math.hypot(dr, dc)
                if m > best:                               # first channel of largest magnitude
                    best, g_r, g_c = m, dr, dc
            mag = math.hypot(g_c, g_r)
            theta = (math.atan2(g_r, g_c) * _RAD2DEG) % 180.0
            if binning == 0:
                k = int(theta / width_bin)                 # a guess, corrected against the edges
                if k > orientations:
                    k = orientations
                while k < orientations and theta >= edges[k + 1]:
                    k += 1
                while k > 0 and theta < edges[k]:
                    k -= 1
                if k < orientations:
                    hist[ci, cj, k] += mag
            else:
                position = theta / width_bin
                lower = math.floor(position)
                w_up = position - lower
                lo = int(lower) % orientations
                hi = (lo + 1) % orientations
                hist[ci, cj, lo] += (1.0 - w_up) * mag
                hist[ci, cj, hi] += w_up * mag
    area = c_row * c_col
    for k in range(orientations):
        hist[ci, cj, k] /= area


# ----------------------------------------------------------------------------- host wrapper

def hog_cell_histograms_cuda(image, *, edges, pixels_per_cell=(8, 8), binning="hard"):
    """HOG cell histograms of a grey ``(H, W)`` or colour ``(H, W, C)`` float image, on the GPU.

    Gradients, orientations and votes fused in one kernel (one thread per
    cell); the same values as the readable steps ``image_gradients`` /
    ``dominant_channel_gradients`` -> ``magnitude_orientation`` ->
    ``cell_histograms`` of :mod:`scratchface.detection.hog`.

    Parameters
    ----------
    image : CuPy float array, shape (H, W) or (H, W, C)
    edges : float64 array, shape (orientations + 1,)
        The hard-bin edges in degrees, ``scratchface.detection.hog.orientation_bin_edges(orientations)``
        (their count gives the number of orientations).
    pixels_per_cell : int or (rows, cols)
    binning : {'hard', 'bilinear'}

    Returns
    -------
    histograms : float64 CuPy array, shape (H // rows, W // cols, orientations)
        The mean vote per pixel of each cell (as scikit-image).
    """
    check_array(image, "image", ndim=(2, 3), dtype_kind="f")
    c_row, c_col = check_int_pair(pixels_per_cell, "pixels_per_cell")
    check_choice(binning, "binning", tuple(BINNING_CODES))
    if np.ndim(edges) != 1 or len(edges) < 2:
        raise ValueError(f"edges must be the orientations + 1 bin edges (1-D, at least 2), got shape {np.shape(edges)}")
    orientations = len(edges) - 1
    xp = array_module(image)
    if image.ndim == 2:
        image = image[:, :, None]
    n_rows, n_cols = image.shape[0] // c_row, image.shape[1] // c_col
    hist = xp.empty((n_rows, n_cols, orientations), dtype=np.float64)
    if hist.size == 0:
        return hist
    launch(cell_histograms_kernel, blocks_for(n_rows * n_cols, 64), 64, image, c_row, c_col,
           xp.asarray(edges, dtype=np.float64), BINNING_CODES[binning], hist)
    return hist
